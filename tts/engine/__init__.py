"""In-process Mandarin TTS engine: plain Python + torch, no Django imports."""
