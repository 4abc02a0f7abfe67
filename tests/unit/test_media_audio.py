"""Audio the rows carry (data/media.py load_audio): files decoded at the processor's sampling rate,
and datasets' decoded Audio values resampled to it, so a clip keeps its pitch and length."""

import numpy as np
import pytest
import soundfile
from transformers import WhisperFeatureExtractor

from axo.data.formats.base import RowError
from axo.data.media import load_audio


class Processor:  # what load_audio reads of a processor: its feature extractor
    feature_extractor = WhisperFeatureExtractor(sampling_rate=16000)


def peak_hz(clip: np.ndarray, rate: int) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(clip)))) * rate / len(clip)


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_a_clip_keeps_its_pitch_and_length_at_the_processors_rate(rate, tmp_path):
    t = np.arange(rate // 2) / rate  # half a second of 440 Hz
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    soundfile.write(tmp_path / "tone.wav", tone, rate)
    for clip in (load_audio({"array": tone, "sampling_rate": rate}, Processor()),
                 load_audio(str(tmp_path / "tone.wav"), Processor())):
        assert len(clip) == 8000 and abs(peak_hz(clip, 16000) - 440) <= 2


def test_a_missing_file_is_a_row_error(tmp_path):
    with pytest.raises(RowError, match="not a readable file"):
        load_audio(str(tmp_path / "nowhere.wav"), Processor())
