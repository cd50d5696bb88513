"""Everything CTranslate2 (faster-whisper's engine) in one place.

- format.py   read model.bin with numpy
- to_hf.py    CT2 Whisper folder -> Hugging Face folder (`speechft import-ct2`, built-in aliases)
- convert.py  Hugging Face folder -> CT2 folder (ctranslate2's own converter)
- runtime.py  decode an exported folder with faster-whisper (export parity, serve, reports)
- beam.py     CT2 beam search on a live model's encoder output (eval.num_beams > 1)

Imports point one way: export.py, serve.py and models/whisper.py use this package; it uses
none of them.
"""
