"""The engine's sentences in the Chinese interface.

The engine (``indextts_core``) speaks English: its voice-check notes, warnings and the messages
of its errors are plain sentences for the CLI, the HTTP API and the log. The page shows them in
the interface language; :func:`engine_text` matches each known sentence and rewrites it in
Chinese with the same numbers and names. ``tests/test_app_i18n.py`` makes the engine produce the
sentences the page shows and checks that none is left in English, so a sentence the engine rewords
fails a test instead of slipping through untranslated.

A sentence no pattern knows is shown as the engine wrote it (a clear English sentence is better
than a wrong Chinese one).
"""

from __future__ import annotations

import re

from .i18n import emotion_name

_NUM = r"-?[\d.,]+"

# (pattern over the whole sentence, Chinese template with the pattern's named groups).
# Sentences made of parts (an error's "where: detail") are split by :func:`engine_text` first.
_SENTENCES: list[tuple[str, str]] = [
    # -- voice check (indextts_core.voice_check) ---------------------------------------------
    (rf"The clip is only (?P<s>{_NUM}) s long, too short to capture the voice well; "
     rf"record (?P<a>{_NUM}) to (?P<b>{_NUM}) seconds of clear speech\.",
     "片段只有 {s} 秒，太短，难以捕捉音色；请录制 {a}–{b} 秒清晰的语音。"),
    (rf"The clip is (?P<s>{_NUM}) s long; (?P<a>{_NUM}) to (?P<b>{_NUM}) seconds of speech work best\.",
     "片段长 {s} 秒；{a}–{b} 秒的语音效果最好。"),
    (rf"The clip is (?P<s>{_NUM}) s long; only the first (?P<u>{_NUM}) s are used\.",
     "片段长 {s} 秒；只使用前 {u} 秒。"),
    (rf"The voice clip is (?P<s>{_NUM}) s long; only its first (?P<u>{_NUM}) s are used\.",
     "音色片段长 {s} 秒；只使用前 {u} 秒。"),
    (rf"The sample rate is (?P<r>{_NUM}) Hz, which sounds muffled; use a recording made at "
     rf"(?P<g>{_NUM}) Hz or more\.",
     "采样率为 {r} Hz，听起来发闷；请使用 {g} Hz 或更高采样率的录音。"),
    (rf"The sample rate is (?P<r>{_NUM}) Hz; recordings at (?P<g>{_NUM}) Hz or more keep more detail\.",
     "采样率为 {r} Hz；{g} Hz 或更高的录音保留更多细节。"),
    (rf"The clip has (?P<n>{_NUM}) channels; they are mixed to mono\.", "片段有 {n} 个声道，将混合为单声道。"),
    (r"The clip is silent; upload or record a clip in which the voice can be heard\.",
     "片段是静音；请上传或录制能听到人声的片段。"),
    (rf"The clip is very quiet \(average level (?P<db>{_NUM}) dBFS\); record closer to the microphone "
     r"or raise the input level\.",
     "片段音量很低（平均电平 {db} dBFS）；请靠近麦克风录音或调高输入电平。"),
    (rf"(?P<p>{_NUM})% of the samples are clipped, which sounds distorted; record again with a lower "
     r"input level\.",
     "{p}% 的采样被削波，听起来会失真；请降低输入电平后重新录制。"),
    (rf"Only (?P<p>{_NUM})% of the clip has sound; cut the silence so that mostly speech remains\.",
     "片段只有 {p}% 有声音；请剪掉静音部分，只保留语音。"),
    (r"The voice clip is silent; upload or record a clip in which the voice can be heard\.",
     "音色片段是静音；请上传或录制能听到人声的片段。"),
    (r"The voice clip is empty; upload or record 5 to 15 seconds of speech\.",
     "音色片段是空的；请上传或录制 5–15 秒的语音。"),
    (r"The voice clip contains invalid samples \(NaN or infinity\); export it again as WAV\.",
     "音色片段含有无效采样（NaN 或无穷大）；请重新导出为 WAV。"),
    (r"The voice file (?P<f>.+) was not found; upload the clip again\.", "找不到音色文件 {f}；请重新上传。"),
    (r"Could not read (?P<f>.+) \((?P<ext>[^()]*)\)\. WAV, FLAC, OGG and MP3 work; the file may be damaged "
     r"or in a format ffmpeg cannot decode either; convert it to WAV\.",
     "无法读取 {f}（{ext}）。支持 WAV、FLAC、OGG 和 MP3；文件可能已损坏，或其格式 ffmpeg 也无法解码；"
     "请转换为 WAV。"),
    (r"Could not read (?P<f>.+) \((?P<ext>[^()]*)\)\. WAV, FLAC, OGG and MP3 work; convert other formats "
     r"\(for example M4A\) to WAV, or install ffmpeg so they can be decoded\.",
     "无法读取 {f}（{ext}）。支持 WAV、FLAC、OGG 和 MP3；请把其他格式（例如 M4A）转换为 WAV，"
     "或安装 ffmpeg 以解码它们。"),
    # -- text (indextts_core.text) ------------------------------------------------------------
    (r"The text is empty: type something for the voice to say\.", "文本为空：请输入要朗读的内容。"),
    (r"Nothing is left to read after normalisation: the text has no letters, characters or numbers "
     r"the model can say\.",
     "规范化后没有可朗读的内容：文本中没有模型能读的字母、汉字或数字。"),
    (r"Nothing in the text can be read aloud: it has no words, characters or numbers the model knows"
     r" \((?P<pieces>.+) are not in its vocabulary\)\.",
     "文本中没有可朗读的内容：没有模型认识的词、汉字或数字（{pieces} 不在其词表中）。"),
    (r"Nothing in the text can be read aloud: it has no words, characters or numbers the model knows\.",
     "文本中没有可朗读的内容：没有模型认识的词、汉字或数字。"),
    (rf"the text has (?P<n>{_NUM}) characters; the limit is (?P<m>{_NUM})\. Split it into several parts\.",
     "文本有 {n} 个字符，上限为 {m}。请分成几部分。"),
    (r"invalid pinyin: (?P<where>.+)\. Write a reading like chóng or chong2 \(tone 1-4, 5 = neutral\) "
     r"with a syllable the model knows\.",
     "无效拼音：{where}。请写成 chóng 或 chong2 这样的读音（声调 1–4，5 为轻声），并使用模型认识的音节。"),
    (r"'(?P<raw>.*)' at character (?P<n>\d+) is not a pinyin syllable \(write it like chóng or chong2\)",
     "位置 {n} 处的“{raw}”不是拼音音节（请写成 chóng 或 chong2）"),
    (r"pinyin '(?P<raw>.*)' at character (?P<n>\d+) \((?P<syl>[^()]*)\) is not a syllable the model knows; "
     r"check the spelling and the tone \(1-4, 5 = neutral\)",
     "位置 {n} 处的拼音“{raw}”（{syl}）不是模型认识的音节；请检查拼写和声调（1–4，5 为轻声）"),
    (r"empty pinyin annotation at character (?P<n>\d+)", "位置 {n} 处的拼音标注为空"),
    (r"pinyin '(?P<raw>.*)' at character (?P<n>\d+) \((?P<syl>[^()]*)\) is not a syllable this model knows; "
     r"it will be spelled out letter by letter",
     "位置 {n} 处的拼音“{raw}”（{syl}）不是此模型认识的音节，将逐个字母读出"),
    (r"pinyin '(?P<raw>.*)' \((?P<syl>[^()]*)\) is not a syllable this model knows; "
     r"it will be spelled out letter by letter",
     "拼音“{raw}”（{syl}）不是此模型认识的音节，将逐个字母读出"),
    (r"(?P<n>\d+) piece\(s\) are not in the model's vocabulary and will be read as <unk>: (?P<pieces>.*)",
     "{n} 个片段不在模型词表中，将读作 <unk>：{pieces}"),
    # -- settings (indextts_core.options, app.settings, duration planning) ------------------
    (r"emotion weight must be between 0 and 1, got (?P<v>.+)", "情感权重须在 0 到 1 之间，当前为 {v}"),
    (rf"emotion '(?P<e>\w+)' must be between 0 and (?P<m>{_NUM}), got (?P<v>.+)",
     "情感“{e}”须在 0 到 {m} 之间，当前为 {v}"),
    (r"emotion mode 'audio' needs an emotion reference clip", "“参考情感音频”方式需要一段情感参考音频"),
    (r"Emotion from a clip needs an emotion clip: upload one or pick another emotion mode\.",
     "“参考情感音频”需要一段情感音频：请上传，或选择其他情感控制方式。"),
    (rf"speed must be between (?P<a>{_NUM}) and (?P<b>{_NUM}), got (?P<v>.+)", "语速须在 {a} 到 {b} 之间，当前为 {v}"),
    (rf"target length must be between 0 and (?P<m>{_NUM}) seconds, got (?P<v>.+)",
     "目标时长须在 0 到 {m} 秒之间，当前为 {v}"),
    (r"token count must be a whole number >= 1, got (?P<v>.+)", "词元数须为不小于 1 的整数，当前为 {v}"),
    (r"duration mode '(?P<m>\w+)' needs a number", "时长方式“{m}”需要一个数值"),
    (r"temperature must be in \(0, 5\], got (?P<v>.+)", "温度须大于 0 且不超过 5，当前为 {v}"),
    (r"top-p must be in \(0, 1\], got (?P<v>.+)", "Top-p 须大于 0 且不超过 1，当前为 {v}"),
    (r"top-k must be 0 \(off\) or more, got (?P<v>.+)", "Top-k 须为 0（不限）或更大，当前为 {v}"),
    (r"beams must be 1\.\.16, got (?P<v>.+)", "束数须在 1 到 16 之间，当前为 {v}"),
    (r"repetition penalty must be in \(0, 100\], got (?P<v>.+)", "重复惩罚须大于 0 且不超过 100，当前为 {v}"),
    (r"max mel tokens must be >= 1, got (?P<v>.+)", "每段最多语音词元须不小于 1，当前为 {v}"),
    (r"tokens per segment must be 1\.\.(?P<m>\d+), got (?P<v>.+)", "分段大小须在 1 到 {m} 个词元之间，当前为 {v}"),
    (r"seed must be a whole number from 0 to (?P<m>\d+), got (?P<v>.+)", "种子须为 0 到 {m} 之间的整数，当前为 {v}"),
    (r"segment_tokens \(tokens per segment\) must be a whole number (?P<a>\d+)\.\.(?P<b>\d+), got (?P<v>.+)",
     "分段大小须为 {a} 到 {b} 之间的整数，当前为 {v}"),
    (rf"gap_ms \(the gap between segments\) must be (?P<a>{_NUM})\.\.(?P<b>{_NUM}) ms, got (?P<v>.+)",
     "段间停顿须在 {a} 到 {b} 毫秒之间，当前为 {v}"),
    (r"diffusion_steps must be a whole number (?P<a>\d+)\.\.(?P<b>\d+), got (?P<v>.+)",
     "扩散步数须为 {a} 到 {b} 之间的整数，当前为 {v}"),
    (rf"cfg_rate \(guidance\) must be (?P<a>{_NUM})\.\.(?P<b>{_NUM}), got (?P<v>.+)",
     "引导强度须在 {a} 到 {b} 之间，当前为 {v}"),
    (r"The (?P<name>[\w -]+) must be a number, got (?P<v>.+)\.", "“{name}”须为数字，当前为 {v}。"),
    (r"The (?P<name>[\w -]+) must be a whole number, got (?P<v>.+)\.", "“{name}”须为整数，当前为 {v}。"),
    (r"(?P<c>\d+) codes cannot be shared among (?P<n>\d+) text segments; ask for at least (?P<m>\d+)",
     "{c} 个语音编码无法分给 {n} 个文本段；请至少设为 {m}"),
    (r"(?P<c>\d+) codes need (?P<k>\d+) in one segment, more than its limit of (?P<m>\d+); raise max mel "
     r"tokens or use smaller segments",
     "{c} 个语音编码在一段中需要 {k} 个，超过其上限 {m}；请调高“每段最多语音词元”或减小分段"),
    (rf"a (?P<s>{_NUM}) s target is too short for (?P<n>\d+) text segment\(s\) separated by (?P<g>{_NUM}) ms "
     r"gaps; use a longer target, a shorter text, larger segments or smaller gaps",
     "目标 {s} 秒对 {n} 个文本段（段间停顿 {g} 毫秒）来说太短；请加长目标时长、缩短文本、增大分段或减小停顿"),
    (r"max_mel_tokens (?P<v>\d+) exceeds what this model supports \((?P<m>\d+)\)",
     "每段最多语音词元 {v} 超过此模型支持的上限（{m}）"),
    # -- Gradio's own range check of number boxes (gradio.components.Number) ---------------
    (rf"Value (?P<v>{_NUM}) is less than minimum value (?P<m>{_NUM})\.", "数值 {v} 小于最小值 {m}。"),
    (rf"Value (?P<v>{_NUM}) is greater than maximum value (?P<m>{_NUM})\.", "数值 {v} 大于最大值 {m}。"),
]

# The names app.settings gives its fields in "The <name> must be a number" (its _number/_whole).
_FIELD_NAMES = {
    "segment size": "分段大小", "gap between segments": "段间停顿", "diffusion steps": "扩散步数",
    "guidance": "引导强度", "seed": "种子", "speed": "语速", "target length": "目标时长",
    "token count": "词元数", "top-k": "Top-k", "top-p": "Top-p", "beams": "束数", "max tokens": "最多语音词元",
    "temperature": "温度", "repetition penalty": "重复惩罚", "emotion weight": "情感权重",
    "emotion intensity": "情感强度",
}

_COMPILED = [(re.compile(p), zh) for p, zh in _SENTENCES]
# "X at character N" inside the invalid-pinyin list.
_AT_CHAR = re.compile(r"(\S+) at character (\d+)")


def _translate_one(sentence: str) -> str | None:
    for pattern, zh in _COMPILED:
        m = pattern.fullmatch(sentence)
        if m is not None:
            fields = m.groupdict()
            if "e" in fields:
                fields["e"] = emotion_name("zh", fields["e"])
            if "name" in fields:
                fields["name"] = _FIELD_NAMES.get(fields["name"], fields["name"])
            if "where" in fields:
                fields["where"] = _AT_CHAR.sub(r"\1（位置 \2）", fields["where"])
            return zh.format(**fields)
    return None


def engine_text(lang: str, sentence: str) -> str:
    """``sentence`` (one of the engine's) in ``lang``; unchanged in English or when unknown."""
    if lang != "zh" or not sentence:
        return sentence
    text = sentence.strip()
    found = _translate_one(text)
    if found is not None:
        return found
    # Errors that name where they come from: "emotion clip: <sentence>".
    head, sep, rest = text.partition(": ")
    if sep:
        inner = _translate_one(rest)
        if inner is not None:
            return f"{head}：{inner}"
    return sentence


def is_translated(sentence: str) -> bool:
    """True when :func:`engine_text` knows ``sentence`` (used by the tests)."""
    return engine_text("zh", sentence) != sentence


__all__ = ["engine_text", "is_translated"]
