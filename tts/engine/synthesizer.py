"""The Baker voice end to end: text -> utterances -> FastSpeech2 -> MB-MelGAN -> audio.

`load(EngineConfig(...))` once per process returns a `BakerSynthesizer`; its methods are pure
inference (no Django). Every utterance (a sentence, or a comma-split piece of a long one) is
synthesised and loudness-normalised on its own, so `stream()` yields exactly the pieces that
`synthesize()` concatenates: a streamed reply and a whole one are the same samples.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from scipy.signal import resample_poly

from . import audio
from .checkpoint import LoadedModels, ModelFilesError, load_models
from .frontend import PAUSE_SYMBOL_IDS, TextValidationError, Utterance, text_to_utterances

# The vocabulary (controls, results, errors, the version) lives in the torch-free `types`
# module so that web processes can use it without importing torch; re-exported here.
from .types import (  # noqa: F401
    LIMITS,
    SYNTHESIZER_VERSION,
    ControlError,
    Controls,
    EngineConfig,
    EngineUnavailable,
    SpeechAudio,
    VoiceInfo,
    engine_version_of,
)

logger = logging.getLogger(__name__)

# Bump when anything here changes the produced samples: it is part of every audio cache key.
# Pitch control. The model predicts z-normalised token f0 (the speaker's f0 mean/std are not
# shipped), and its f0 embedding answers a shift of that z-value smoothly only up to about
# +3.4 / -4.5 semitones, then saturates. So: within MODEL_PITCH_RANGE we shift z by the amount
# that was measured to give the requested semitones (median f0 of synthesised speech with
# Praat, bench/calibrate_pitch.py); the remainder (up to the ±6 limit) is done by rendering
# slower and resampling, which also shifts formants, so it is kept to a few semitones.
PITCH_CALIBRATION = (
    (-4.15, -1.5),
    (-3.03, -1.0),
    (-1.74, -0.5),
    (0.0, 0.0),
    (1.17, 0.5),
    (2.2, 1.0),
    (3.0, 1.5),
)  # (semitones measured, z-shift applied)
MODEL_PITCH_RANGE = (-4.0, 3.0)


def pitch_plan(semitones: float) -> tuple[float, float]:
    """Split a pitch request into (z-shift for the model, resampling factor for the rest)."""
    low, high = MODEL_PITCH_RANGE
    in_model = min(max(semitones, low), high)
    z_shift = float(np.interp(in_model, *zip(*PITCH_CALIBRATION, strict=True)))
    return z_shift, 2.0 ** ((semitones - in_model) / 12.0)


@dataclass
class _Job:
    """One utterance to render, with the controls of the text it came from."""

    utterance: Utterance
    controls: Controls
    result: np.ndarray | None = field(default=None, repr=False)


# Utterances per forward pass in `synthesize_batch`, per device (measured, bench/tts_bench.py).
# On CPU, padding a batch to its longest utterance (and its longest mel) costs more than the
# batch saves: the networks are convolutions that already use every core for one utterance, so
# batched precompute ran at 1.7-3.7 clips/s against 6.0-7.3 one by one. On CUDA a single
# utterance leaves the device idle between kernel launches; padded batches fill it.
BATCH_UTTERANCES = {"cpu": 1, "cuda": 16}


def batch_utterances_for(device: torch.device) -> int:
    return BATCH_UTTERANCES.get(device.type, 1)


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise EngineUnavailable("TTS_DEVICE=cuda but no CUDA device is available")
    if name not in {"cpu", "cuda"}:
        raise EngineUnavailable(f"unknown TTS device {name!r} (auto, cpu or cuda)")
    return torch.device(name)


class FairLock:
    """A lock granted in arrival order (threading.Lock is not: a thread that releases it and
    asks again usually gets it back at once).

    Inference is serialised per utterance. With a plain lock, one request of 2,000 digits (50
    utterances) re-took the lock after each of its utterances while other requests' single
    utterance waited - 0.4 s answers took 4.1 s. In arrival order, a short request waits for at
    most one utterance of each request ahead of it: fair queuing between concurrent requests.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> FairLock:
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cond.wait()
        return self

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


class BakerSynthesizer:
    """The Baker Mandarin voice. Thread-safe: inference is serialised, per utterance, in
    arrival order (FairLock: fair queuing between concurrent requests)."""

    voice = VoiceInfo("baker", "标贝女声 (Baker)")

    def __init__(self, config: EngineConfig, models: LoadedModels, device: torch.device):
        self.config = config
        self.models = models
        self.device = device
        self.dtype = next(models.acoustic.parameters()).dtype
        self.sample_rate = models.config.sample_rate
        self.hop = models.config.hop_size
        self._lock = FairLock()
        self.engine_version = engine_version_of(Path(config.model_dir))
        self._pause_ids = torch.tensor(sorted(PAUSE_SYMBOL_IDS), device=device)
        self.loaded_at = time.time()

    # -- public API (the engine protocol) -------------------------------------------------

    def utterances(
        self, text: str, *, lexicon: Mapping[str, Sequence[str]] | None = None
    ) -> list[Utterance]:
        """Validate and split text; raises TextValidationError with a clear code."""
        return text_to_utterances(
            text,
            lexicon=lexicon,
            max_chars=self.config.max_text_chars,
            max_utterance_chars=self.config.max_utterance_chars,
        )

    def synthesize(
        self,
        text: str,
        *,
        controls: Controls | None = None,
        lexicon: Mapping[str, Sequence[str]] | None = None,
    ) -> SpeechAudio:
        pieces = [piece.samples for piece in self.stream(text, controls=controls, lexicon=lexicon)]
        return SpeechAudio(np.concatenate(pieces), self.sample_rate, text)

    def stream(
        self,
        text: str,
        *,
        controls: Controls | None = None,
        lexicon: Mapping[str, Sequence[str]] | None = None,
    ) -> Iterator[SpeechAudio]:
        """Yield one normalised piece per utterance, as soon as each is ready."""
        controls = controls or Controls()
        for utterance in self.utterances(text, lexicon=lexicon):
            job = _Job(utterance, controls)
            self._render([job])
            yield SpeechAudio(job.result, self.sample_rate, utterance.text)

    def synthesize_batch(
        self,
        texts: Sequence[str],
        *,
        controls: Sequence[Controls] | Controls | None = None,
        lexicon: Mapping[str, Sequence[str]] | None = None,
        max_batch_utterances: int | None = None,
    ) -> list[SpeechAudio]:
        """Render many texts at once (precompute). Each result equals what `synthesize` gives
        for that text.

        The strategy is per device (`batch_utterances_for`), unless `max_batch_utterances` is
        given: on CUDA utterances of similar length are padded into batches; on CPU they are
        rendered one at a time, which is exactly the `synthesize` path.
        """
        if max_batch_utterances is None:
            max_batch_utterances = batch_utterances_for(self.device)
        if isinstance(controls, Controls) or controls is None:
            controls = [controls or Controls()] * len(texts)
        if len(controls) != len(texts):
            raise ValueError("controls must be one Controls or one per text")
        per_text = [
            [_Job(u, c) for u in self.utterances(t, lexicon=lexicon)]
            for t, c in zip(texts, controls, strict=True)
        ]
        jobs = sorted((j for js in per_text for j in js), key=lambda j: len(j.utterance.ids))
        for start in range(0, len(jobs), max_batch_utterances):
            self._render(jobs[start : start + max_batch_utterances])
        return [
            SpeechAudio(np.concatenate([j.result for j in js]), self.sample_rate, text)
            for js, text in zip(per_text, texts, strict=True)
        ]

    def voices(self) -> list[VoiceInfo]:
        return [self.voice]

    def status(self) -> dict:
        return {
            "ok": True,
            "voice": self.voice.voice_id,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "engine_version": self.engine_version,
            "threads": torch.get_num_threads(),
        }

    # -- inference ------------------------------------------------------------------------

    @torch.inference_mode()
    def _render(self, jobs: list[_Job]) -> None:
        dev = self.device
        lengths = torch.tensor([len(j.utterance.ids) for j in jobs], device=dev)
        ids = torch.zeros(len(jobs), int(lengths.max()), dtype=torch.long, device=dev)
        for row, job in enumerate(jobs):
            ids[row, : len(job.utterance.ids)] = torch.tensor(job.utterance.ids, device=dev)

        def per_item(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, device=dev, dtype=torch.float32)

        plans = [pitch_plan(j.controls.pitch) for j in jobs]
        pause = per_item([j.controls.pause for j in jobs]).unsqueeze(1)
        is_pause = torch.isin(ids, self._pause_ids)
        duration_scale = torch.where(is_pause, pause.expand_as(ids), torch.ones_like(pause))

        with self._lock:
            out = self.models.acoustic(
                ids,
                lengths,
                # The model's ratio multiplies durations; our `speed` is a rate (2 = twice as fast).
                # Residual pitch is done by resampling, which shortens by the same factor.
                speed=per_item(
                    [
                        resample / j.controls.speed
                        for j, (_, resample) in zip(jobs, plans, strict=True)
                    ]
                ),
                f0_scale=per_item([1.0] * len(jobs)),
                f0_shift=per_item([z for z, _ in plans]),
                energy_scale=per_item([1.0] * len(jobs)),
                duration_scale=duration_scale,
            )
            mel_lengths = out.mel_lengths.clamp(min=self.models.vocoder.config.min_frames)
            mel = out.mel
            if mel.shape[1] < int(mel_lengths.max()):
                mel = torch.nn.functional.pad(mel, (0, 0, 0, int(mel_lengths.max()) - mel.shape[1]))
            wav = self.models.vocoder(mel, mel_lengths).float().cpu().numpy()

        for row, (job, (_, resample)) in enumerate(zip(jobs, plans, strict=True)):
            samples = wav[row, : int(mel_lengths[row]) * self.hop]
            if resample != 1.0:
                samples = _pitch_resample(samples, resample)
            # Energy is a loudness offset around the common target, so every reply is equally
            # loud at energy 1.0 and louder/softer by a predictable amount otherwise.
            target = self.config.target_lufs + 20.0 * math.log10(job.controls.energy)
            job.result = audio.loudness_normalise(samples, self.sample_rate, target_lufs=target)


def _pitch_resample(samples: np.ndarray, factor: float) -> np.ndarray:
    """Raise pitch by `factor` (and shorten by it) by resampling to len/factor samples."""
    ratio = Fraction(1.0 / factor).limit_denominator(100)
    return resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32)


def load(config: EngineConfig) -> BakerSynthesizer:
    """Load the voice once (per process), on CUDA when asked/available, and warm it up."""
    device = _pick_device(config.device)
    if device.type == "cpu":
        torch.set_num_threads(config.num_threads or os.cpu_count() or 1)
    dtype = torch.float16 if device.type == "cuda" and config.half_on_cuda else torch.float32
    started = time.perf_counter()
    try:
        models = load_models(Path(config.model_dir), device=device, dtype=dtype)
    except ModelFilesError as exc:
        raise EngineUnavailable(str(exc)) from exc
    engine = BakerSynthesizer(config, models, device)
    if config.warm_up:
        engine.synthesize("您好。")
    logger.info(
        "TTS engine %s loaded on %s in %.2fs",
        engine.engine_version,
        device,
        time.perf_counter() - started,
    )
    return engine


__all__ = [
    "BakerSynthesizer",
    "ControlError",
    "Controls",
    "EngineConfig",
    "EngineUnavailable",
    "SpeechAudio",
    "TextValidationError",
    "VoiceInfo",
    "load",
]
