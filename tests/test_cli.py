"""The synth command line: options map to the engine, conflicts and unknown options are clear errors."""

from __future__ import annotations

import pytest
import soundfile as sf

from indextts_core.cli import main
from tests.golden import GOLDEN_DIR

VOICE = str(GOLDEN_DIR / "audio" / "spk_librivox_0890_22k.wav")
EMO = str(GOLDEN_DIR / "audio" / "emo_librivox_0920_22k.wav")


@pytest.fixture
def base(tiny_model_dir, tmp_path, test_device):
    return ["synth", "--voice", VOICE, "--out", str(tmp_path / "o.wav"), "--model-dir", str(tiny_model_dir),
            "--device", test_device, "--offline"]


def test_writes_a_wav_of_the_requested_length(base, tmp_path, capsys):
    assert main([*base, "--text", "你好。", "--duration-seconds", "1.5", "--greedy", "--seed", "3",
                 "--emotion-audio", EMO, "--emotion-weight", "0.5"]) == 0
    data, sr = sf.read(tmp_path / "o.wav", dtype="int16")
    assert sr == 22050 and len(data) == round(1.5 * 22050)
    out = capsys.readouterr()
    assert "requested 1.500 s" in out.out and "test model" in out.err


@pytest.mark.parametrize(("extra", "message"), [
    (["--emotion-audio", EMO, "--emotion-vector", "0,0,1,0,0,0,0,0"], "one emotion source"),
    (["--emotion-vector", "0,0,1,0,0,0,0,0", "--emotion-text", "sad"], "one emotion source"),
    (["--emotion-weight", "0.5"], "--emotion-weight needs"),
    (["--emotion-text-max-tokens", "8"], "needs --emotion-text"),
    (["--emotion-vector", "0,1,x"], "8 numbers"),
    (["--emotion-vector", "0,0,1"], "8 values"),
    (["--emotion-vector", "0,0,5,0,0,0,0,0"], "between 0 and 1.2"),
    (["--speed", "1.5", "--duration-seconds", "3"], "one length control"),
    (["--speed", "3"], "between 0.5 and 2.0"),
    (["--greedy", "--top-k", "5"], "drop --top-k"),
    (["--greedy", "--beams", "3"], "drop --beams"),
    (["--temperature", "0"], "temperature"),
    (["--segment-tokens", "0"], "tokens per segment"),
    (["--quick-streaming-tokens", "-3"], "quick_streaming_tokens"),
])
def test_conflicting_or_bad_options(base, capsys, extra, message):
    assert main([*base, "--text", "你好。", *extra]) == 2
    assert message in capsys.readouterr().err


def test_text_is_required_once(base, tmp_path, capsys):
    assert main(base) == 2
    assert "--text or --text-file" in capsys.readouterr().err
    f = tmp_path / "t.txt"
    f.write_text("你好。", encoding="utf-8")
    assert main([*base, "--text", "a", "--text-file", str(f)]) == 2


def test_unknown_option_is_rejected(base, capsys):
    with pytest.raises(SystemExit) as e:
        main([*base, "--text", "hi", "--emotion", "sad"])
    assert e.value.code == 2
    assert "unrecognized arguments: --emotion" in capsys.readouterr().err


def test_take_warnings_are_printed(base, tmp_path, capsys):
    data, sr = sf.read(VOICE, dtype="float32")
    short = tmp_path / "short.wav"
    sf.write(short, data[: int(0.5 * sr)], sr)
    args = [a if a != VOICE else str(short) for a in base]
    assert main([*args, "--text", "Hello 😀.", "--greedy", "--max-mel-tokens", "20"]) == 0
    err = capsys.readouterr().err
    assert "warning: The clip is only 0.5 s long" in err and "warning: 1 piece(s)" in err


def test_text_file_problems_are_clear_errors(base, tmp_path, capsys):
    assert main([*base, "--text-file", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read the text file" in capsys.readouterr().err
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café".encode("latin-1"))
    assert main([*base, "--text-file", str(latin1)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err


def test_missing_out_folder_is_refused_before_the_model_loads(base, tmp_path, capsys):
    args = [*base, "--text", "hi"]
    args[args.index("--out") + 1] = str(tmp_path / "no" / "such" / "o.wav")
    args[args.index("--model-dir") + 1] = str(tmp_path / "no-model")  # never reached
    assert main(args) == 2
    assert "the folder of --out does not exist" in capsys.readouterr().err


def test_unreadable_text_is_refused(base, capsys):
    assert main([*base, "--text", "👍👍"]) == 2
    assert "Nothing in the text can be read aloud" in capsys.readouterr().err
