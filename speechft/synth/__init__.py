"""Offline speech synthesis for text-only domain adaptation.

Modules, each with one job:
- voices     Voice (engine + voice + rate + augmentation), Sentence, sentence files, SPEAKERS
- engines/   the TTS engines behind one interface (hibari, flite, festival, piper, espeak) + registry
- signal     `finish`: every engine's output -> 16 kHz, peak level, effects (the one path all audio takes)
- effects    the Effects spec; room (reverb, noise), warp (tempo, pitch, formants), telephone (channel)
- batch      cache keys, reuse of existing files, batched rendering over a thread pool
- listeners  render listeners: a hook told of every utterance synthesised (`count_renders`)
- plan       voices.yaml: which voices speak each split, with which variety
- manifests  manifests of synthesised speech and `speechft synth`
- nonspeech  `speechft prepare nonspeech`: a deterministic set of clips with no speech

Every result is float32 mono at 16 kHz, peak-normalised, optionally augmented from a seed.
`synth_sentences` caches by content: the file name hashes everything that determines the audio,
so a second run with the same inputs does no synthesis.
"""

from .batch import cache_key, synth_sentences, synthesize
from .effects import BabbleTalker, Effects
from .engines import ENGINES, CliEngine, Engine, usable_voices
from .engines.festival import ALIASES as FESTIVAL_ALIASES
from .listeners import add_render_listener, count_renders, render_listener
from .manifests import synth_main, write_manifest_if_changed
from .signal import CACHE_VERSION, TARGET_PEAK, finish
from .voices import MAX_SPEED, MIN_SPEED, SPEAKERS, Sentence, Voice, read_sentences, speakable

__all__ = [
    "BabbleTalker", "CACHE_VERSION", "CliEngine", "ENGINES", "Effects", "Engine", "FESTIVAL_ALIASES", "MAX_SPEED",
    "MIN_SPEED", "SPEAKERS", "Sentence", "TARGET_PEAK", "Voice", "add_render_listener", "cache_key", "count_renders",
    "finish", "read_sentences", "render_listener", "speakable", "synth_main", "synth_sentences", "synthesize",
    "usable_voices", "write_manifest_if_changed",
]
