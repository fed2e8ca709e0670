"""Where each file of an IndexTTS-2 model folder lives, and where it comes from.

The folder has the official layout: the release's own files at the top, the helper models
flat under ``hf_cache/`` (as the official ``ensure_models_available`` places them).

``FILES`` lists every file the engine reads, grouped: "core" files are needed for any synthesis,
"emotion_text" only for the emotion-from-text mode (the Qwen model). ``FOLDERS`` lists hub folders
fetched whole, because their exact file list belongs to the release, not to us: everything under
the prefix is downloaded, while completeness is judged on the files in ``FILES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MAIN_REPO = "IndexTeam/IndexTTS-2"
W2V_BERT_REPO = "facebook/w2v-bert-2.0"
CODEC_REPO = "amphion/MaskGCT"
CAMPPLUS_REPO = "funasr/campplus"
BIGVGAN_REPO = "nvidia/bigvgan_v2_22khz_80band_256x"

CONFIG = "config.yaml"
GPT = "gpt.pth"
S2MEL = "s2mel.pth"
W2V_STATS = "wav2vec2bert_stats.pt"
SPK_MATRIX = "feat1.pt"
EMO_MATRIX = "feat2.pt"
BPE = "bpe.model"
QWEN_DIR = "qwen0.6bemo4-merge"
W2V_BERT_DIR = "hf_cache/w2v-bert-2.0"
CODEC = "hf_cache/semantic_codec_model.safetensors"
CAMPPLUS = "hf_cache/campplus_cn_common.bin"
BIGVGAN_DIR = "hf_cache/bigvgan"


@dataclass(frozen=True)
class RemoteFile:
    """One file of the model folder: its local path and its origin on the hub."""

    local: str
    repo_id: str
    filename: str
    approx_bytes: int
    # "core" files are needed for any synthesis; "emotion_text" only for the text emotion mode.
    group: str = "core"
    # A branch, tag or commit of the hub repository; pin a commit here to freeze the download.
    revision: str = "main"


@dataclass(frozen=True)
class RemoteFolder:
    """A hub folder fetched whole: every file under ``prefix`` lands under ``local``."""

    local: str
    repo_id: str
    prefix: str
    group: str
    revision: str = "main"

    def local_of(self, remote_path: str) -> str:
        """The local path (relative to the model folder) of a file listed under ``prefix``."""
        if not remote_path.startswith(self.prefix):
            raise ValueError(f"{remote_path!r} is not under {self.prefix!r}")
        return f"{self.local}/{remote_path[len(self.prefix):]}"


GROUPS: tuple[str, ...] = ("core", "emotion_text")


_MB = 1_000_000
FILES: tuple[RemoteFile, ...] = (
    RemoteFile(CONFIG, MAIN_REPO, "config.yaml", 3_000),
    RemoteFile(BPE, MAIN_REPO, "bpe.model", 476_000),
    RemoteFile(W2V_STATS, MAIN_REPO, "wav2vec2bert_stats.pt", 9_300),
    RemoteFile(SPK_MATRIX, MAIN_REPO, "feat1.pt", 57_000),
    RemoteFile(EMO_MATRIX, MAIN_REPO, "feat2.pt", 375_000),
    RemoteFile(GPT, MAIN_REPO, "gpt.pth", 3_480 * _MB),
    RemoteFile(S2MEL, MAIN_REPO, "s2mel.pth", 1_200 * _MB),
    RemoteFile(f"{W2V_BERT_DIR}/config.json", W2V_BERT_REPO, "config.json", 2_000),
    RemoteFile(f"{W2V_BERT_DIR}/preprocessor_config.json", W2V_BERT_REPO, "preprocessor_config.json", 300),
    RemoteFile(f"{W2V_BERT_DIR}/model.safetensors", W2V_BERT_REPO, "model.safetensors", 2_320 * _MB),
    RemoteFile(CODEC, CODEC_REPO, "semantic_codec/model.safetensors", 177 * _MB),
    RemoteFile(CAMPPLUS, CAMPPLUS_REPO, "campplus_cn_common.bin", 28 * _MB),
    RemoteFile(f"{BIGVGAN_DIR}/config.json", BIGVGAN_REPO, "config.json", 2_000),
    RemoteFile(f"{BIGVGAN_DIR}/bigvgan_generator.pt", BIGVGAN_REPO, "bigvgan_generator.pt", 450 * _MB),
    *(RemoteFile(f"{QWEN_DIR}/{name}", MAIN_REPO, f"{QWEN_DIR}/{name}", size, group="emotion_text")
      for name, size in (("config.json", 1_000), ("generation_config.json", 200),
                         ("tokenizer.json", 11_400_000), ("tokenizer_config.json", 10_000),
                         ("vocab.json", 2_800_000), ("merges.txt", 1_700_000),
                         ("special_tokens_map.json", 1_000), ("chat_template.jinja", 600),
                         ("model.safetensors", 1_190 * _MB))),
)


FOLDERS: tuple[RemoteFolder, ...] = (
    RemoteFolder(QWEN_DIR, MAIN_REPO, f"{QWEN_DIR}/", group="emotion_text"),
)


def path_of(model_dir: str | Path, local: str) -> Path:
    return Path(model_dir) / local


def files_of(groups: tuple[str, ...] | list[str] = GROUPS) -> tuple[RemoteFile, ...]:
    """The files of the given groups, in the order of ``FILES`` (which is the download order)."""
    return tuple(f for f in FILES if f.group in groups)


def folders_of(groups: tuple[str, ...] | list[str] = GROUPS) -> tuple[RemoteFolder, ...]:
    return tuple(f for f in FOLDERS if f.group in groups)


def approx_bytes(groups: tuple[str, ...] | list[str] = GROUPS) -> int:
    """Approximate download size of the given groups, in bytes."""
    return sum(f.approx_bytes for f in files_of(groups))
