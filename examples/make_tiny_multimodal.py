"""Tiny multimodal models, one per family axo trains, built from each family's own config and
processor classes around the examples' tokenizer (nothing downloads), and the small image and audio
datasets their examples train on.

    python examples/make_tiny_multimodal.py   # writes examples/tiny-multimodal/<family>/ and
                                              # examples/data/{colours,tones}/

The example folders hold configs and processors but no weights (their configs set
`reinit_weights: true`); the tests build the same models with saved random weights.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TINY_LLAMA = HERE / "tiny-llama"
CHATML = (
    "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' }}"
    "{%- for part in m.content %}{%- if part.type == 'image' %}{{- IMAGE }}{%- elif part.type == 'audio' %}{{- AUDIO }}"
    "{%- else %}{{- part.text }}{%- endif %}{%- endfor %}{{- '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Llava's and Llava-Next's vision tower
CLIP_TOWER = {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 4, "image_size": 16, "patch_size": 8, "projection_dim": 32}


def chat_template(image: str = "", audio: str = "") -> str:
    """ChatML whose image and audio parts become the family's placeholder token."""
    return CHATML.replace("IMAGE", repr(image)).replace("AUDIO", repr(audio))


def _tokenizer(*tokens: str, **special):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(TINY_LLAMA, **({"extra_special_tokens": special} if special else {}))
    tokenizer.add_tokens([*tokens, "<|im_start|>", "<|im_end|>"], special_tokens=True)
    return tokenizer


def _text_config(vocab: int) -> dict:
    from transformers import AutoConfig

    text = AutoConfig.from_pretrained(TINY_LLAMA)
    text.update({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "vocab_size": vocab, "initializer_range": 0.2})
    return text.to_dict()


def _save(folder: Path, model_class, config, processor, weights: bool) -> str:
    import torch

    if weights:
        torch.manual_seed(0)
        model_class(config).save_pretrained(folder)
    else:
        config.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model_class.__name__


def llava(folder: Path, weights: bool = True) -> str:
    """Llava: a CLIP tower (16x16 images, 8x8 patches) whose patch features replace one `<image>` token
    each, so every image is 4 image tokens."""
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    tokenizer = _tokenizer("<image>")
    config = LlavaConfig(text_config=_text_config(len(tokenizer)), vision_config=CLIP_TOWER,
                         image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-1)
    images = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    processor = LlavaProcessor(image_processor=images, tokenizer=tokenizer, patch_size=8,
                               vision_feature_select_strategy="default",
                               num_additional_image_tokens=1,  # CLIP's CLS token, which the "default" strategy drops
                               chat_template=chat_template("<image>"))
    return _save(folder, LlavaForConditionalGeneration, config, processor, weights)


def llava_next(folder: Path, weights: bool = True) -> str:
    """Llava-Next: CLIP tiles of 16x16 chosen per image from `image_grid_pinpoints` (anyres), each
    tile's patches and a base view become image tokens, so their count depends on the image's size."""
    from transformers import LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextImageProcessor, \
        LlavaNextProcessor

    tokenizer = _tokenizer("<image>")
    pinpoints = [[16, 32], [32, 16], [32, 32]]
    config = LlavaNextConfig(text_config=_text_config(len(tokenizer)), vision_config=CLIP_TOWER,
                             image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                             vision_feature_select_strategy="default", vision_feature_layer=-1,
                             image_grid_pinpoints=pinpoints)
    images = LlavaNextImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16},
                                     image_grid_pinpoints=pinpoints)
    processor = LlavaNextProcessor(image_processor=images, tokenizer=tokenizer, patch_size=8,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                   chat_template=chat_template("<image>"))
    return _save(folder, LlavaNextForConditionalGeneration, config, processor, weights)


def mllama(folder: Path, weights: bool = True) -> str:
    """Llama 3.2 Vision: one `<|image|>` token per image, whatever its size; the image reaches the text
    through cross-attention layers (`cross_attention_mask`), in up to 4 tiles of 16x16."""
    from transformers import MllamaConfig, MllamaForConditionalGeneration, MllamaImageProcessor, MllamaProcessor

    tokenizer = _tokenizer("<|image|>", "<|python_tag|>")
    text = {**_text_config(len(tokenizer)), "cross_attention_layers": [1], "pad_token_id": tokenizer.eos_token_id}
    config = MllamaConfig(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_global_layers": 1,
                       "attention_heads": 4, "image_size": 16, "patch_size": 8, "max_num_tiles": 4,
                       "vision_output_dim": 64, "intermediate_layers_indices": [0]},
        text_config={k: text[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                          "num_key_value_heads", "vocab_size", "cross_attention_layers", "bos_token_id",
                                          "eos_token_id", "pad_token_id", "initializer_range")},
        image_token_index=tokenizer.convert_tokens_to_ids("<|image|>"))
    processor = MllamaProcessor(image_processor=MllamaImageProcessor(size={"height": 16, "width": 16}, max_image_tiles=4),
                                tokenizer=tokenizer, chat_template=chat_template("<|image|>"))
    return _save(folder, MllamaForConditionalGeneration, config, processor, weights)


def idefics3(folder: Path, weights: bool = True) -> str:
    """Idefics3 (SmolVLM's architecture): an image larger than 16 pixels is split into 16x16 tiles plus
    a global view, each written as `<fake_token_around_image><row_i_col_j><image>...` text the
    processor inserts (the row/column tags are ordinary text tokens)."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessorPil, Idefics3Processor

    tokenizer = _tokenizer("<image>")
    images = Idefics3ImageProcessorPil(size={"longest_edge": 32}, max_image_size={"longest_edge": 16},
                                       do_image_splitting=True)
    processor = Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=1,  # (16/8)^2 / 2^2
                                  chat_template=chat_template("<image>"))  # (adds its tokens to the tokenizer)
    config = Idefics3Config(text_config=_text_config(len(tokenizer)), scale_factor=2,
                            vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                           "num_attention_heads": 4, "image_size": 16, "patch_size": 8},
                            image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    return _save(folder, Idefics3ForConditionalGeneration, config, processor, weights)


def gemma3(folder: Path, weights: bool = True) -> str:
    """Gemma 3: the processor replaces each `<start_of_image>` with a blank line, the image's soft tokens
    between begin and end markers, and another blank line (text the label walk steps over). With
    pan-and-scan on (`processor_kwargs`), a wide or tall image is also cut into crops, each its own
    soft tokens, after the words "Here is the original image ... and here are some crops to help you
    see better"."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3ImageProcessorPil, Gemma3Processor

    tokenizer = _tokenizer(boi_token="<start_of_image>", eoi_token="<end_of_image>", image_token="<image_soft_token>")
    config = Gemma3Config(
        text_config={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "head_dim": 16, "vocab_size": len(tokenizer), "sliding_window": 64,
                     "initializer_range": 0.2},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                       "image_size": 16, "patch_size": 4},
        mm_tokens_per_image=4, initializer_range=0.2, boi_token_index=tokenizer.boi_token_id, eoi_token_index=tokenizer.eoi_token_id,
        image_token_index=tokenizer.image_token_id)
    processor = Gemma3Processor(image_processor=Gemma3ImageProcessorPil(size={"height": 16, "width": 16}),
                                tokenizer=tokenizer, image_seq_length=4, chat_template=chat_template("<start_of_image>"))
    return _save(folder, Gemma3ForConditionalGeneration, config, processor, weights)


def qwen2_audio(folder: Path, weights: bool = True) -> str:
    """Qwen2-Audio: a Whisper-style encoder over 16 mel bins of at most 1 second; the processor repeats
    `<|AUDIO|>` once per 40 ms of each clip (7 tokens for 0.3 s, 15 for 0.6 s)."""
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor, \
        WhisperFeatureExtractor

    tokenizer = _tokenizer("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")
    config = Qwen2AudioConfig(
        audio_config={"num_mel_bins": 16, "encoder_layers": 1, "encoder_attention_heads": 4, "encoder_ffn_dim": 64,
                      "d_model": 32, "max_source_positions": 50},
        text_config={**_text_config(len(tokenizer)), "model_type": "qwen2"},
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"))
    features = WhisperFeatureExtractor(feature_size=16, chunk_length=1, sampling_rate=16000)
    processor = Qwen2AudioProcessor(feature_extractor=features, tokenizer=tokenizer,
                                    chat_template=chat_template(audio="<|audio_bos|><|AUDIO|><|audio_eos|>"))
    return _save(folder, Qwen2AudioForConditionalGeneration, config, processor, weights)


def qwen2_vl(folder: Path, weights: bool = True, version: str = "2") -> str:
    """Qwen2-VL (`version="2.5"`: Qwen2.5-VL): dynamic resolution. An image is cut into 4-pixel patches
    merged 2x2, so it becomes (height/8) x (width/8) `<|image_pad|>` tokens between vision markers;
    `image_grid_thw` gives the model each grid for its M-RoPE positions. Its processor always builds a
    video processor, which needs torchvision."""
    import transformers

    v = "" if version == "2" else "_5"
    tokenizer = _tokenizer("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
    tokens = {f"{k}_token_id": tokenizer.convert_tokens_to_ids(f"<|{t}|>")
              for k, t in (("image", "image_pad"), ("video", "video_pad"), ("vision_start", "vision_start"),
                           ("vision_end", "vision_end"))}
    text = {**_text_config(len(tokenizer)), "model_type": f"qwen2{v}_vl_text", "head_dim": 16,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}}
    patches = {"patch_size": 4, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_heads": 4}
    vision = ({"depth": 1, "embed_dim": 32, "hidden_size": 64, "mlp_ratio": 2, **patches} if version == "2" else
              {"depth": 2, "hidden_size": 32, "out_hidden_size": 64, "intermediate_size": 64, "window_size": 16,
               "fullatt_block_indexes": [1], **patches})
    config = getattr(transformers, f"Qwen2{v}_VLConfig")(text_config=text, vision_config=vision, **tokens)
    sizes = {"min_pixels": 16 * 16, "max_pixels": 32 * 32, "patch_size": 4, "merge_size": 2, "temporal_patch_size": 2}
    processor = getattr(transformers, f"Qwen2{v}_VLProcessor")(
        image_processor=transformers.Qwen2VLImageProcessorPil(**sizes),
        video_processor=transformers.Qwen2VLVideoProcessor(**sizes), tokenizer=tokenizer,
        chat_template=chat_template("<|vision_start|><|image_pad|><|vision_end|>"))
    return _save(folder, getattr(transformers, f"Qwen2{v}_VLForConditionalGeneration"), config, processor, weights)


def qwen2_5_vl(folder: Path, weights: bool = True) -> str:
    return qwen2_vl(folder, weights, version="2.5")


def mistral3(folder: Path, weights: bool = True) -> str:
    """Mistral 3 (Pixtral's encoder): each image, at its own resolution up to 32 pixels, becomes rows of
    `[IMG]` tokens (one per 8x8 pixels after 2x2 patch merging) ended by `[IMG_BREAK]`, the last by
    `[IMG_END]`. Its processor needs torchvision."""
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration, PixtralImageProcessorPil, \
        PixtralProcessor

    tokenizer = _tokenizer("[IMG]", "[IMG_BREAK]", "[IMG_END]")
    config = Mistral3Config(
        text_config={**_text_config(len(tokenizer)), "model_type": "mistral", "head_dim": 16},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                       "image_size": 32, "patch_size": 4, "head_dim": 8},
        image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"), spatial_merge_size=2, vision_feature_layer=-1)
    processor = PixtralProcessor(image_processor=PixtralImageProcessorPil(size={"longest_edge": 32}, patch_size=4),
                                 tokenizer=tokenizer, patch_size=4, spatial_merge_size=2,
                                 chat_template=chat_template("[IMG]"))
    return _save(folder, Mistral3ForConditionalGeneration, config, processor, weights)


FAMILIES = {"llava": llava, "llava_next": llava_next, "mllama": mllama, "idefics3": idefics3, "gemma3": gemma3,
            "qwen2_audio": qwen2_audio, "qwen2_vl": qwen2_vl, "qwen2_5_vl": qwen2_5_vl, "mistral3": mistral3}
AUDIO = {"qwen2_audio"}  # the families that read audio; the others read images
# The families whose processors need torchvision (not built here where it is missing).
TORCHVISION = {"qwen2_vl", "qwen2_5_vl", "mistral3"}


def write_colour_rows(folder: Path, sizes=((16, 16),), paths_from: Path | None = None) -> Path:
    """16 image-text rows: a red or blue image (cycling through `sizes`), "colour?", and its colour as
    the answer; the images as files next to the JSONL, named relative to `paths_from` if given."""
    from PIL import Image

    rows = []
    for i, (name, rgb) in enumerate([("red", (255, 0, 0)), ("blue", (0, 0, 255))] * 8):
        path = folder / f"{i}.png"
        Image.new("RGB", sizes[i % len(sizes)], rgb).save(path)
        rows.append({"messages": [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "colour?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": name}]}],
            "images": [str(path.relative_to(paths_from) if paths_from else path)]})
    return _write(folder / "colours.jsonl", rows)


def write_tone_rows(folder: Path, seconds=(0.3,), paths_from: Path | None = None) -> Path:
    """16 audio-text rows: a low (220 Hz) or high (1760 Hz) tone (each lasting each of `seconds`),
    "pitch?", and "low" or "high" as the answer; the clips as WAV files next to the JSONL."""
    import numpy as np
    import soundfile

    rows = []
    for i, (name, hz) in enumerate([("low", 220), ("high", 1760)] * 8):
        path = folder / f"{i}.wav"
        t = np.arange(int(16000 * seconds[i // 2 % len(seconds)])) / 16000  # each pitch at each length
        soundfile.write(path, 0.5 * np.sin(2 * np.pi * hz * t), 16000)
        rows.append({"messages": [
            {"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": "pitch?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": name}]}],
            "audios": [str(path.relative_to(paths_from) if paths_from else path)]})
    return _write(folder / "tones.jsonl", rows)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def main() -> None:
    import importlib.util

    for name, build in FAMILIES.items():
        if name in TORCHVISION and importlib.util.find_spec("torchvision") is None:
            print(f"skipped {name}: its processor needs torchvision", file=sys.stderr)
            continue
        folder = HERE / "tiny-multimodal" / name
        folder.mkdir(parents=True, exist_ok=True)
        build(folder, weights=False)
    for kind, write, shapes in (("colours", write_colour_rows, [(16, 16), (32, 16), (24, 40)]),
                                ("tones", write_tone_rows, [0.3, 0.6])):
        folder = HERE / "data" / kind
        folder.mkdir(parents=True, exist_ok=True)
        write(folder, shapes, paths_from=HERE.parent)  # example paths are relative to the repo root
    print("wrote", HERE / "tiny-multimodal", "and", HERE / "data", file=sys.stderr)


if __name__ == "__main__":
    main()
