"""The interface's words in English and Chinese.

``STRINGS[key] = (english, chinese)``. :func:`t` looks a key up and fills ``{fields}``.
Keys ending in ``.tip`` are hover tooltips (also used as the visible hint under inputs).
"""

from __future__ import annotations

from .i18n_jobs import JOB_STRINGS

LANGS = ("en", "zh")
LANG_CHOICES = [("English", "en"), ("中文", "zh")]

EMOTION_NAMES = {
    "happy": ("Happy", "高兴"),
    "angry": ("Angry", "愤怒"),
    "sad": ("Sad", "悲伤"),
    "afraid": ("Afraid", "恐惧"),
    "disgusted": ("Disgusted", "反感"),
    "melancholic": ("Melancholic", "低落"),
    "surprised": ("Surprised", "惊讶"),
    "calm": ("Calm (neutral)", "自然（平静）"),
    "speaker": ("As in the voice clip", "与音色参考相同"),
}

STRINGS: dict[str, tuple[str, str]] = {
    # -- page -------------------------------------------------------------------------
    "app.title": ("IndexTTS Studio", "IndexTTS 工作室"),
    "app.subtitle": (
        "Clone a voice from a 5–15 second clip, type a line, choose how it should sound and how long it "
        "must be, then download the WAV.",
        "上传 5–15 秒的声音片段即可克隆音色；输入台词，选择情感和时长，然后下载 WAV。"),
    "lang.label": ("Language / 语言", "Language / 语言"),
    "lang.tip": ("Switch the interface language.", "切换界面语言。"),
    "banner.test_model": (
        "TEST MODEL — tiny random weights: it produces noise, not speech. Use it to try the app; "
        "start without --test-model for real voices.",
        "测试模型 —— 极小的随机权重：只会生成噪声，不是语音。仅用于试用本应用；"
        "去掉 --test-model 启动即可使用真实模型。"),
    "banner.missing": (
        "The model weights are not on this computer yet. See the “Model & settings” tab to download them.",
        "本机尚未找到模型权重。请在“模型与设置”页下载。"),
    "banner.downloading": ("Downloading the model weights… {progress}", "正在下载模型权重…… {progress}"),
    "banner.loading": ("Loading the model… the page works meanwhile; generating waits until it is ready.",
                       "正在加载模型……页面可以先用；生成会等待加载完成。"),
    "banner.no_engine": (
        "The synthesis engine is not installed in this copy of the app ({detail}). Update the app.",
        "此版本未包含合成引擎（{detail}）。请更新应用。"),
    "banner.failed": ("The model could not be loaded: {detail}", "模型无法加载：{detail}"),
    "tab.synth": ("Create", "创作"),
    "tab.history": ("History", "历史记录"),
    "tab.status": ("Model & settings", "模型与设置"),
    # -- voice ------------------------------------------------------------------------
    "sec.voice": ("### 1 · Voice", "### 1 · 音色"),
    "voice.label": ("Voice clip (upload or record 5–15 s)", "音色参考（上传或录制 5–15 秒）"),
    "voice.tip": ("The voice to imitate: WAV, MP3, FLAC or OGG, or record with the microphone. "
                  "Only the first 15 seconds are used.",
                  "要模仿的声音：WAV、MP3、FLAC 或 OGG，也可以用麦克风录音。只使用前 15 秒。"),
    "voice.none": ("No voice yet: upload a clip or pick a recent one.", "还没有音色：请上传片段或选择最近使用的音色。"),
    "voice.ok": ("Voice OK: {seconds:.1f} s, {rate} Hz, {channels} ch, peak {peak:.0f} dBFS, level {rms:.0f} dBFS.",
                 "音色可用：{seconds:.1f} 秒，{rate} Hz，{channels} 声道，"
                 "峰值 {peak:.0f} dBFS，平均电平 {rms:.0f} dBFS。"),
    "voice.warn": ("Voice loaded, but see the warnings below: {seconds:.1f} s, {rate} Hz, {channels} ch, "
                   "peak {peak:.0f} dBFS, level {rms:.0f} dBFS.",
                   "音色已载入，但请注意下方提示：{seconds:.1f} 秒，{rate} Hz，{channels} 声道，"
                   "峰值 {peak:.0f} dBFS，平均电平 {rms:.0f} dBFS。"),
    "voice.used": ("The model uses the first {used:.1f} s of this clip.", "模型使用此片段的前 {used:.1f} 秒。"),
    "voice.trimmed": ("Trimmed to the first {used:.0f} s (the part the model uses).",
                      "已截取前 {used:.0f} 秒（模型使用的部分）。"),
    "recent.label": ("Recent voices (one click to use)", "最近使用的音色（点击即用）"),
    "recent.tip": ("Voices you used before; click one to use it again.", "以前用过的音色；点击即可再次使用。"),
    "recent.empty": ("(none yet)", "（暂无）"),
    # -- text -------------------------------------------------------------------------
    "sec.text": ("### 2 · Text", "### 2 · 文本"),
    "text.label": ("Text to speak", "要朗读的文本"),
    "text.tip": ("Chinese or English. To fix how a Chinese character is read, put its pinyin in brackets "
                 "after it, e.g. 重[chong2] or 重[chóng], or use the pinyin helper below.",
                 "中文或英文。要指定某个汉字的读音，在它后面用方括号写上拼音，例如 重[chong2] 或 重[chóng]，"
                 "也可以使用下方的拼音助手。"),
    "text.placeholder": ("Type the line here…", "在这里输入台词……"),
    "preview.title": ("Preview of what the model reads", "模型实际朗读内容预览"),
    "preview.empty": ("Type some text to see how it will be read.", "输入文本后可在此预览朗读内容。"),
    "preview.normalized": ("Normalised text", "规范化文本"),
    "preview.stats": ("{tokens} tokens in {segments} segment(s)", "{tokens} 个词元，分为 {segments} 段"),
    "preview.segment": ("Segment {n}", "第 {n} 段"),
    "preview.unknown": ("Unknown to the tokenizer (may be skipped): {pieces}", "分词器不认识（可能被跳过）：{pieces}"),
    "preview.not_ready": ("The preview appears once the model files are on this computer.",
                          "模型文件就绪后显示预览。"),
    "preview.invalid_pinyin": ("Invalid pinyin: {words}. Use a syllable with a tone number 1–5, e.g. hao3.",
                               "无效拼音：{words}。请使用带 1–5 声调数字的音节，例如 hao3。"),
    "pinyin.acc": ("Pinyin helper (characters with several readings)", "拼音助手（多音字）"),
    "pinyin.found": ("{n} character(s) with several readings. Pick one, choose its reading, then insert.",
                     "找到 {n} 个多音字。选择一个字和读音，然后插入。"),
    "pinyin.none": ("No character with several readings in the text.", "文本中没有多音字。"),
    "pinyin.char.label": ("Character", "字"),
    "pinyin.char.tip": ("A character of your text that can be read in more than one way.",
                        "文本中有多种读音的字。"),
    "pinyin.reading.label": ("Reading", "读音"),
    "pinyin.reading.tip": ("The pronunciation to use (tone number: 1–4, 5 = neutral).",
                           "要使用的读音（声调数字 1–4，5 为轻声）。"),
    "pinyin.insert": ("Insert reading", "插入读音"),
    "pinyin.insert.tip": ("Replace the chosen character in the text by the chosen pinyin.",
                          "用所选拼音替换文本中的这个字。"),
    "pinyin.inserted": ("{char} will be read as {reading}.", "“{char}”将读作 {reading}。"),
    "pinyin.replaced": ("{char} will now be read as {reading} instead of {old}.",
                        "“{char}”现在读作 {reading}（原为 {old}）。"),
    "pinyin.pick_first": ("Pick a character and a reading first.", "请先选择一个字和读音。"),
    "pinyin.moved": ("The text changed; pick the character again.", "文本已改动，请重新选择这个字。"),
    # -- emotion ----------------------------------------------------------------------
    "sec.emotion": ("### 3 · Emotion", "### 3 · 情感"),
    "emo_mode.label": ("How should it sound?", "情感控制方式"),
    "emo_mode.tip": ("Where the emotion comes from: the voice clip itself, another clip, a chosen emotion, "
                     "or a description in words.",
                     "情感来源：音色参考本身、另一段情感参考音频、指定情感，或用文字描述。"),
    "emo_mode.speaker": ("Same as the voice", "与音色参考相同"),
    "emo_mode.audio": ("Like an emotion clip", "参考情感音频"),
    "emo_mode.vector": ("Pick an emotion", "选择情感"),
    "emo_mode.text": ("Describe it in words", "文字描述"),
    "emo_audio.label": ("Emotion reference clip", "情感参考音频"),
    "emo_audio.tip": ("A clip whose mood should be copied (any speaker).", "要模仿其情绪的音频（任何说话人均可）。"),
    "emo_weight.label": ("Emotion weight", "情感权重"),
    "emo_weight.tip": ("How strongly the emotion is applied: 0 = the voice's own mood, 1 = fully.",
                       "情感的强弱：0 = 保持音色本身的情绪，1 = 完全应用。"),
    "emo_label.label": ("Emotion", "情感"),
    "emo_label.tip": ("One emotion for the whole line; fine-tune the mix below.", "整句使用的情感；可在下方细调混合。"),
    "emo_intensity.label": ("Intensity", "强度"),
    "emo_intensity.tip": ("How strong the chosen emotion is (0–1.2).", "所选情感的强度（0–1.2）。"),
    "emo_text.label": ("Describe the emotion", "描述情感"),
    "emo_text.tip": ("For example “she is furious but trying to stay polite”. Leave empty to use the line itself.",
                     "例如“她非常生气但努力保持礼貌”。留空则根据台词本身判断。"),
    "emo_text.placeholder": ("e.g. a little sad, speaking softly", "例如：有点难过，轻声地说"),
    "emo_analyze": ("Turn into emotion values", "转换为情感数值"),
    "emo_analyze.tip": ("Let the emotion model read the description and fill the 8 sliders below; you can "
                        "adjust them before generating.",
                        "由情感模型分析描述并填入下面 8 个滑块；生成前可以再调整。"),
    "emo_analyzed": ("The description was turned into the values below; adjust them if you like.",
                     "已将描述转换为下面的数值，可按需调整。"),
    "emo_mix.acc": ("Mix all 8 emotions", "混合 8 种情感"),
    "emo_slider.tip": ("Amount of this emotion in the mix (0–1.2).", "此情感在混合中的比例（0–1.2）。"),
    "emo_random.label": ("Random emotion style", "随机情感风格"),
    "emo_random.tip": ("Pick the emotion style at random instead of the one closest to the voice.",
                       "随机选择情感风格，而不是最接近该音色的风格。"),
    "emo_balance.label": ("Balance the mix (recommended)", "平衡混合（推荐）"),
    "emo_balance.tip": ("Soften strong mixes the way the official app does, so the voice stays natural.",
                        "像官方应用一样减弱过强的混合，使声音保持自然。"),
    # -- length -----------------------------------------------------------------------
    "sec.length": ("### 4 · Length", "### 4 · 时长"),
    "dur_mode.label": ("Length", "时长控制"),
    "dur_mode.tip": ("Free: natural pace. Speed: faster or slower. Exact length: the take lasts exactly the "
                     "seconds you set. Tokens: for experts.",
                     "自由：自然语速。语速：加快或放慢。精确时长：成品恰好为设定的秒数。词元数：供专业用户使用。"),
    "dur_mode.free": ("Free", "自由"),
    "dur_mode.speed": ("Speed", "语速"),
    "dur_mode.seconds": ("Exact length (seconds)", "精确时长（秒）"),
    "dur_mode.tokens": ("Token count (expert)", "词元数（专业）"),
    "speed.label": ("Speed", "语速"),
    "speed.tip": ("0.5 = half as fast, 2.0 = twice as fast.", "0.5 = 慢一倍，2.0 = 快一倍。"),
    "seconds.label": ("Target length (seconds)", "目标时长（秒）"),
    "seconds.tip": ("The whole take, pauses included, lasts exactly this long.", "整段成品（含停顿）恰好为此长度。"),
    "tokens.label": ("Speech tokens", "语音词元数"),
    "tokens.tip": ("Number of speech codes for the whole text (about 50 per second).",
                   "整段文本的语音编码数（约每秒 50 个）。"),
    # -- advanced ---------------------------------------------------------------------
    "adv.acc": ("Advanced settings", "高级设置"),
    "adv.sampling": ("**Sampling** (how the speech codes are chosen)", "**采样**（语音编码的生成方式）"),
    "do_sample.label": ("Sample (off = always the most likely)", "随机采样（关闭 = 总选最可能的）"),
    "do_sample.tip": ("On: varied, natural takes. Off: deterministic decoding.",
                      "开启：更自然多变；关闭：确定性解码。"),
    "temperature.label": ("Temperature", "温度"),
    "temperature.tip": ("Higher = livelier but less stable.", "越高越活泼，但越不稳定。"),
    "top_p.label": ("Top-p", "Top-p"),
    "top_p.tip": ("Only the most likely codes that add up to this probability are considered.",
                  "只考虑累计概率达到此值的最可能编码。"),
    "top_k.label": ("Top-k", "Top-k"),
    "top_k.tip": ("Only this many most likely codes are considered (0 = no limit).",
                  "只考虑概率最高的这么多个编码（0 = 不限）。"),
    "num_beams.label": ("Beams", "束数"),
    "num_beams.tip": ("Candidates kept in parallel; more is steadier but slower.",
                      "并行保留的候选数；越多越稳定但越慢。"),
    "repetition_penalty.label": ("Repetition penalty", "重复惩罚"),
    "repetition_penalty.tip": ("Discourages stuck, repeating sounds.", "抑制卡顿、重复的声音。"),
    "max_mel_tokens.label": ("Max speech tokens per segment", "每段最多语音词元"),
    "max_mel_tokens.tip": ("Upper limit for one segment (about 50 per second).", "单段的上限（约每秒 50 个）。"),
    "adv.segments": ("**Segments** (long text is read in pieces)", "**分段**（长文本分段朗读）"),
    "segment_tokens.label": ("Segment size (text tokens)", "分段大小（文本词元）"),
    "segment_tokens.tip": ("Longer text is split into segments of at most this many tokens.",
                           "长文本按此词元数上限分段。"),
    "gap_ms.label": ("Pause between segments (ms)", "段间停顿（毫秒）"),
    "gap_ms.tip": ("Silence inserted between segments.", "段与段之间插入的静音。"),
    "adv.diffusion": ("**Diffusion** (turning codes into sound)", "**扩散**（由编码生成声音）"),
    "diffusion_steps.label": ("Diffusion steps", "扩散步数"),
    "diffusion_steps.tip": ("More steps = finer detail, slower. 25 is the default.",
                            "步数越多细节越好但越慢，默认 25。"),
    "cfg_rate.label": ("Guidance", "引导强度"),
    "cfg_rate.tip": ("How closely the sound follows the voice and text (0.7 is the default).",
                     "声音贴合音色与文本的程度（默认 0.7）。"),
    "seed.label": ("Seed (-1 = new random each take)", "随机种子（-1 = 每次随机）"),
    "seed.tip": ("The same seed with the same inputs gives the same take on this computer.",
                 "相同种子和相同输入在本机会得到相同结果。"),
    "dice": ("🎲 Random seed", "🎲 随机种子"),
    "dice.tip": ("Fill in a new random seed (so you can reuse it later).", "填入一个新的随机种子（便于之后复用）。"),
    # -- generate ---------------------------------------------------------------------
    "generate": ("Generate", "生成"),
    "generate.tip": ("Read the text in the chosen voice. Segments play as they finish.",
                     "用所选音色朗读文本，每段完成即播放。"),
    "stop": ("Stop", "停止"),
    "stop.tip": ("Stop after the segment being generated.", "当前段生成完后停止。"),
    "stopped": ("Stopped. What was not finished is not saved; your inputs are kept.",
                "已停止。未完成的部分不会保存；输入内容已保留。"),
    "live.label": ("Live preview (segments as they finish)", "实时预览（逐段播放）"),
    "live.tip": ("Each segment plays as soon as it is ready.", "每段完成后立即播放。"),
    "take.label": ("Your take", "生成结果"),
    "take.tip": ("The finished take: play it, or download it with the button below.",
                 "完成的音频：可播放，或用下方按钮下载。"),
    "download": ("⬇ Download WAV", "⬇ 下载 WAV"),
    "download.tip": ("Save the take as a 22.05 kHz 16-bit WAV file.", "将结果保存为 22.05 kHz 16 位 WAV 文件。"),
    "progress.start": ("Preparing…", "准备中……"),
    "progress.waiting": ("Waiting for the engine (another job is running or the model is loading)…",
                         "等待引擎（有其他任务在运行或模型正在加载）……"),
    "progress.segment": ("Generating segment {n} of {total}…", "正在生成第 {n}/{total} 段……"),
    "progress.segment_done": ("Segment {n} of {total} done.", "第 {n}/{total} 段完成。"),
    "progress.saving": ("Saving…", "保存中……"),
    "progress.variant": ("Variant {n} of {total}: {name}…", "变体 {n}/{total}：{name}……"),
    # Progress inside a segment (the engine's SynthesisProgress) and the work estimate.
    "progress.inside": ("Generating segment {n} of {total}: {stage}{left}", "正在生成第 {n}/{total} 段：{stage}{left}"),
    "progress.stage.prepare": ("reading the voice and the emotion", "读取音色和情感"),
    "progress.stage.codes": ("{step} speech codes", "已生成 {step} 个语音码"),
    "progress.stage.mel": ("diffusion step {step} of {steps}", "扩散第 {step}/{steps} 步"),
    "progress.stage.vocoder": ("turning it into sound", "合成波形"),
    "progress.stage.done": ("finishing", "收尾"),
    "progress.left": (" · about {seconds} s left", " · 约剩 {seconds} 秒"),
    "preview.estimate": ("About {seconds} s of work at the speed this engine has shown so far.",
                         "按本机目前的实测速度，约需 {seconds} 秒。"),
    "preview.estimate_later": ("How long it takes is estimated after the first take.",
                               "第一次生成后即可估计所需时间。"),
    "error.too_long": ("The text has {n} characters; one take takes at most {limit}. Split it, or use the Batch "
                       "tab (one take per line).",
                       "文本有 {n} 个字符，一次最多 {limit} 个。请拆分文本，或使用“批量生成”页（每行一条）。"),
    "done": ("Done in {time:.1f} s.", "完成，用时 {time:.1f} 秒。"),
    "take.info": (
        "**Length:** {seconds:.2f} s{requested} · **Generated in:** {gen:.1f} s · **Real-time factor:** {rtf:.2f} · "
        "**Seed:** {seed} · **Segments:** {segments}",
        # The full-width colon stays outside the bold: "**时长：**1" does not close the bold in
        # Markdown (a closing ** after punctuation must be followed by space or punctuation).
        "**时长**：{seconds:.2f} 秒{requested} · **生成用时**：{gen:.1f} 秒 · **实时率**：{rtf:.2f} · "
        "**种子**：{seed} · **段数**：{segments}"),
    "take.requested": (" (asked for {requested:.2f} s)", "（目标 {requested:.2f} 秒）"),
    "take.saved": ("Saved as `{path}`", "已保存为 `{path}`"),
    "take.test_model": ("Made with the test model: noise, not speech.", "由测试模型生成：噪声，不是语音。"),
    # -- variants ---------------------------------------------------------------------
    "sec.variants": ("### Variants: the same line in several emotions", "### 变体：同一句台词的多种情感"),
    "variants.label": ("Emotions to render", "要生成的情感"),
    "variants.tip": ("Tick the emotions; each is rendered with the same voice, text, length and seed.",
                     "勾选情感；每种都使用相同的音色、文本、时长和种子生成。"),
    "variants.btn": ("Render variants", "生成变体"),
    "variants.btn.tip": ("Render the line once per ticked emotion, side by side.",
                         "为每个勾选的情感各生成一次，并排比较。"),
    "variants.none": ("Tick at least one emotion for the variants.", "请至少勾选一种情感。"),
    "variants.done": ("{n} variant(s) ready. Each is also in History.", "{n} 个变体已完成，也已加入历史记录。"),
    # -- messages ---------------------------------------------------------------------
    "error.no_voice": ("Add a voice first: upload a 5–15 s clip, record one, or pick a recent voice.",
                       "请先添加音色：上传或录制 5–15 秒的片段，或选择最近使用的音色。"),
    "error.no_text": ("Type the text to speak first.", "请先输入要朗读的文本。"),
    "error.invalid_pinyin": ("The text has invalid pinyin: {words}. Use a syllable with a tone number 1–5 "
                             "(for example hao3), or remove it.",
                             "文本中有无效拼音：{words}。请使用带 1–5 声调数字的音节（例如 hao3），或删除它。"),
    "error.silent_voice": ("The voice clip is silent; upload or record a clip in which the voice can be heard.",
                           "音色片段是静音；请上传或录制能听到人声的片段。"),
    "error.no_emotion_clip": ("Upload an emotion reference clip, or choose another emotion mode.",
                              "请上传情感参考音频，或选择其他情感控制方式。"),
    "error.oom": ("Out of memory. Try a shorter text or a smaller segment size, close other programs that use "
                  "the GPU, start with --precision fp16, or click “Unload models” in “Model & settings” and try "
                  "again. Your inputs are kept.",
                  "内存不足。请缩短文本或减小分段大小、关闭其他占用显卡的程序、用 --precision fp16 启动，"
                  "或在“模型与设置”中点击“卸载模型”后重试。输入内容已保留。"),
    "error.model_missing": ("The model weights are missing: {detail} See the “Model & settings” tab.",
                            "缺少模型权重：{detail} 请查看“模型与设置”页。"),
    "error.text": ("There is a problem with the text: {detail}", "文本有问题：{detail}"),
    "error.not_uploaded": ("Only clips uploaded to this app can be used; upload the emotion clip again.",
                           "只能使用上传到本应用的音频；请重新上传情绪参考音频。"),
    "error.audio": ("There is a problem with the audio: {detail}", "音频有问题：{detail}"),
    "error.option": ("A setting is out of range: {detail}", "设置超出范围：{detail}"),
    "error.engine": ("The engine could not finish: {detail}", "引擎未能完成：{detail}"),
    "error.unexpected": ("Something went wrong ({detail}). Your inputs are kept; the terminal has details.",
                         "出现意外错误（{detail}）。输入内容已保留；终端中有详细信息。"),
    "error.not_ready": ("The model is not ready ({state}). {hint}", "模型尚未就绪（{state}）。{hint}"),
    "hint.missing": ("Download the weights in the “Model & settings” tab.", "请在“模型与设置”页下载权重。"),
    "hint.downloading": ("Wait for the download to finish.", "请等待下载完成。"),
    "hint.loading": ("Wait a moment and try again.", "请稍候再试。"),
    "hint.no_engine": ("This copy of the app has no synthesis engine.", "此版本的应用没有合成引擎。"),
    "hint.failed": ("See the “Model & settings” tab for the reason.", "原因见“模型与设置”页。"),
    "error.emotion_text": ("Type a description (or some text to speak) first.", "请先输入情感描述（或要朗读的文本）。"),
    # -- history ----------------------------------------------------------------------
    "history.folder": ("Takes are saved in `{path}` (files never overwrite each other).",
                       "所有结果保存在 `{path}`（文件不会互相覆盖）。"),
    "history.empty": ("No takes yet. Generate something on the Create tab.", "还没有结果。请在“创作”页生成。"),
    "history.table": ("Takes (click a row)", "结果列表（点击一行）"),
    "history.table.tip": ("Every take you made, newest first. Click a row to play or reuse it.",
                          "你生成的所有结果，最新的在前。点击一行可播放或复用。"),
    "history.col.time": ("Time", "时间"),
    "history.col.text": ("Text", "文本"),
    "history.col.voice": ("Voice", "音色"),
    "history.col.emotion": ("Emotion", "情感"),
    "history.col.length": ("Length (s)", "时长（秒）"),
    "history.col.seed": ("Seed", "种子"),
    "history.audio": ("Selected take", "所选结果"),
    "history.audio.tip": ("Play the selected take.", "播放所选结果。"),
    "history.pick": ("Click a take in the list to see its settings.", "在列表中点击一条结果查看其设置。"),
    "history.reuse": ("Use these settings again", "再次使用这些设置"),
    "history.reuse.tip": ("Copy this take's text, voice and every setting (seed included) to the Create tab.",
                          "将此结果的文本、音色和全部设置（包括种子）复制到“创作”页。"),
    "history.delete": ("🗑 Delete", "🗑 删除"),
    "history.delete.tip": ("Delete this take and its WAV file (Undo brings it back).",
                           "删除此结果及其 WAV 文件（可撤销）。"),
    "history.download": ("⬇ Download WAV", "⬇ 下载 WAV"),
    "history.refresh": ("Refresh", "刷新"),
    "history.refresh.tip": ("Reload the list from disk.", "从磁盘重新载入列表。"),
    "history.deleted": ("Deleted. “Undo” brings it back.", "已删除。点击“撤销”可恢复。"),
    "history.undo": ("↩ Undo", "↩ 撤销"),
    "history.undo.tip": ("Bring back the take deleted last, with its WAV file.", "恢复最近删除的结果及其 WAV 文件。"),
    "history.restored": ("The take is back.", "已恢复。"),
    "history.undo_gone": ("Nothing to undo: only the take deleted last can come back.",
                          "没有可撤销的删除：只能恢复最近删除的一条。"),
    "history.settings": ("All settings", "全部设置"),
    "history.reused": ("Settings copied to the Create tab.", "设置已复制到“创作”页。"),
    "history.voice_gone": ("The voice clip of this take is no longer stored; pick a voice.",
                           "此结果的音色片段已不存在，请重新选择音色。"),
    "history.details": ("**{time}** · {kind} · {emotion} · {seconds:.2f} s · seed {seed}\n\n> {text}\n\n"
                        "Voice: {voice} · File: `{file}`",
                        "**{time}** · {kind} · {emotion} · {seconds:.2f} 秒 · 种子 {seed}\n\n> {text}\n\n"
                        "音色：{voice} · 文件：`{file}`"),
    "kind.take": ("take", "单次"),
    "kind.variant": ("variant", "变体"),
    # -- status -----------------------------------------------------------------------
    "status.title": ("### Model", "### 模型"),
    "status.state": ("State", "状态"),
    "state.ready": ("ready", "就绪"),
    "state.loading": ("loading", "加载中"),
    "state.downloading": ("downloading", "下载中"),
    "state.missing": ("weights missing", "缺少权重"),
    "state.unloaded": ("unloaded (loads again when needed)", "已卸载（需要时自动重新加载）"),
    "state.failed": ("failed to load", "加载失败"),
    "state.no_engine": ("engine not installed", "未安装引擎"),
    "status.folder": ("Model folder", "模型文件夹"),
    "status.kind": ("Model", "模型"),
    "status.kind.test": ("tiny test model (random weights, noise only)", "极小测试模型（随机权重，只有噪声）"),
    "status.kind.real": ("IndexTTS-2", "IndexTTS-2"),
    "status.device": ("Device", "设备"),
    "status.precision": ("Precision", "精度"),
    "status.memory": ("Memory in use", "已用显存/内存"),
    "status.memory.value": ("{allocated} allocated, {reserved} reserved", "已分配 {allocated}，已保留 {reserved}"),
    "status.memory.process": ("{size} of RAM used by the app (CPU)", "应用占用内存 {size}（CPU）"),
    "status.load_time": ("Load time", "加载用时"),
    "status.files": ("Files", "文件"),
    "status.files.summary": ("{present} of {total} files present ({size})", "{present}/{total} 个文件已就绪（{size}）"),
    "status.download": ("Download", "下载"),
    "status.download.progress": ("{done} of {total} ({pct:.0f}%), {speed}/s — {current}",
                                 "{done} / {total}（{pct:.0f}%），{speed}/秒 —— {current}"),
    "status.offline": (
        "**Offline?** Download the IndexTTS-2 files on a computer with internet (from "
        "https://huggingface.co/IndexTeam/IndexTTS-2, including `hf_cache/` and `qwen0.6bemo4-merge/`; the list "
        "below says where each file comes from and goes) and copy them into `{path}`, or start with `--model-dir` "
        "pointing at a folder that has them. `--test-model` runs a tiny noise-only model without any download.",
        "**离线使用？** 在能上网的电脑上下载 IndexTTS-2 文件（https://huggingface.co/IndexTeam/IndexTTS-2，"
        "包括 `hf_cache/` 和 `qwen0.6bemo4-merge/`；下方列表写明每个文件的来源和位置），复制到 `{path}`；"
        "或用 `--model-dir` 指向已有这些文件的文件夹。`--test-model` 无需下载即可运行一个只产生噪声的极小模型。"),
    "status.outputs": ("Takes folder", "结果文件夹"),
    "status.streaming": ("Live playback", "实时播放"),
    "status.streaming.on": ("streamed while generating", "生成时流式播放"),
    "status.streaming.off": ("segment by segment (install ffmpeg for seamless streaming)",
                             "逐段播放（安装 ffmpeg 可无缝流式播放）"),
    "btn.download_model": ("Download weights", "下载权重"),
    "btn.download_model.tip": ("Fetch the missing model files (up to about 9 GB) from Hugging Face; an "
                               "interrupted download continues where it stopped.",
                               "从 Hugging Face 下载缺少的模型文件（最多约 9 GB）；中断后会从断点继续。"),
    "btn.load": ("Load model", "加载模型"),
    "btn.load.tip": ("Load the model now instead of on the first generation.",
                     "立即加载模型，而不是在首次生成时加载。"),
    "btn.unload": ("Unload models (free memory)", "卸载模型（释放内存）"),
    "btn.unload.tip": ("Free the GPU/CPU memory held by the models; they load again when needed.",
                       "释放模型占用的显存/内存；需要时会重新加载。"),
    "btn.refresh": ("Refresh", "刷新"),
    "btn.refresh.tip": ("Update the status shown here.", "更新此处显示的状态。"),
    "unloaded": ("Models unloaded; memory is free. They load again on the next generation.",
                 "模型已卸载，内存已释放。下次生成时会重新加载。"),
    "nothing_loaded": ("No model was loaded.", "当前没有加载模型。"),
}

STRINGS.update(JOB_STRINGS)


def t(lang: str, key: str, **fields: object) -> str:
    """The text of ``key`` in ``lang`` (English when unknown), with ``fields`` filled in."""
    pair = STRINGS.get(key)
    if pair is None:
        raise KeyError(f"no interface text for {key!r}")
    text = pair[1] if lang == "zh" else pair[0]
    return text.format(**fields) if fields else text


def emotion_name(lang: str, name: str) -> str:
    pair = EMOTION_NAMES.get(name, (name, name))
    return pair[1] if lang == "zh" else pair[0]


def detect_language(accept_language: str | None) -> str:
    """``zh`` when the browser's first preferred language is Chinese, else ``en``."""
    if not accept_language:
        return "en"
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()
        if not tag or tag == "*":
            continue
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
        return "en"
    return "en"
