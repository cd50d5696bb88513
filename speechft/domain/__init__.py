"""A new domain from a user's documents and term list (`speechft new`, `speechft lexicon check`).

documents.py  text files/folders -> documents of sentences (headings, bullets, tables, abbreviations)
abbreviations.py  the built-in abbreviation table and the per-domain abbreviations.tsv
spoken.py     written -> spoken text (numbers, units, dosing, dates, times) for TTS and reference
split.py      de-duplication, length limits, and the split by document (train/dev/test)
templates.py  domain-neutral carrier sentences for terms the documents rarely use (train only)
coverage.py   term occurrences per split, and the carrier sentences that fill the gaps
files.py      the text of voices.yaml, recipe.yaml, run.sh and README.md of a new domain
scaffold.py   `speechft new`: all of the above, written atomically
pronunciation.py  `speechft lexicon check`: terms whose synthesised audio is probably mispronounced
"""
