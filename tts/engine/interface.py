"""What the Django side needs from a speech engine. A future engine (IndexTTS2, CosyVoice with
local weights) implements this protocol and is selected by the TTS_ENGINE setting."""

from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from .types import Controls, SpeechAudio, VoiceInfo


@runtime_checkable
class SpeechEngine(Protocol):
    engine_version: str
    sample_rate: int

    def synthesize(
        self,
        text: str,
        *,
        controls: Controls | None = None,
        lexicon: Mapping[str, Sequence[str]] | None = None,
    ) -> SpeechAudio: ...

    def stream(
        self,
        text: str,
        *,
        controls: Controls | None = None,
        lexicon: Mapping[str, Sequence[str]] | None = None,
    ) -> Iterator[SpeechAudio]: ...

    def synthesize_batch(
        self,
        texts: Sequence[str],
        *,
        controls: Sequence[Controls] | Controls | None = None,
        lexicon: Mapping[str, Sequence[str]] | None = None,
    ) -> list[SpeechAudio]: ...

    def voices(self) -> list[VoiceInfo]: ...

    def status(self) -> dict: ...
