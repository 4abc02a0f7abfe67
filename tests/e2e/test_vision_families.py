"""Image-text families beyond Llava, each built tiny here from its own config classes with a processor
constructed locally (nothing downloads): the labels follow the processor's own expansion of the image
tokens (only the assistant's answer trains), the loss falls, and the output reloads in plain
transformers. Images of several sizes, so families that tile or resize per image (Llava-Next's
anyres) expand them differently within one batch."""

import json
from pathlib import Path

import pytest
import torch

from axo.data.tokenize import IGNORE
from axo.train.sft import train
from conftest import EXAMPLES, read_log_history, write_colour_rows

CHATML_IMAGE = (
    "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' }}"
    "{%- for part in m.content %}{%- if part.type == 'image' %}{{- IMAGE }}"
    "{%- else %}{{- part.text }}{%- endif %}{%- endfor %}{{- '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


# Llava's and Llava-Next's vision tower
CLIP_TOWER = {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 4, "image_size": 16, "patch_size": 8, "projection_dim": 32}


def _tokenizer(*tokens: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(EXAMPLES / "tiny-llama")
    tokenizer.add_tokens([*tokens, "<|im_start|>", "<|im_end|>"], special_tokens=True)
    return tokenizer


def _text_config(vocab: int):
    from transformers import AutoConfig

    text = AutoConfig.from_pretrained(EXAMPLES / "tiny-llama")
    text.update({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "vocab_size": vocab, "initializer_range": 0.2})
    return text


def llava(folder: Path) -> str:
    """Llava: a CLIP tower (16x16 images, 8x8 patches) whose patch features replace one `<image>` token
    each, so every image is 4 image tokens."""
    from transformers import (CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration,
                              LlavaProcessor)

    tokenizer = _tokenizer("<image>")
    config = LlavaConfig(text_config=_text_config(len(tokenizer)), vision_config=CLIP_TOWER,
                         image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    images = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    LlavaProcessor(image_processor=images, tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
                   num_additional_image_tokens=1,  # CLIP's CLS token, which the "default" strategy drops
                   chat_template=CHATML_IMAGE.replace("IMAGE", "'<image>'")).save_pretrained(folder)
    return "LlavaForConditionalGeneration"


def llava_next(folder: Path) -> str:
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
    torch.manual_seed(0)
    LlavaNextForConditionalGeneration(config).save_pretrained(folder)
    images = LlavaNextImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16},
                                     image_grid_pinpoints=pinpoints)
    LlavaNextProcessor(image_processor=images, tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
                       num_additional_image_tokens=1, chat_template=CHATML_IMAGE.replace("IMAGE", "'<image>'")
                       ).save_pretrained(folder)
    return "LlavaNextForConditionalGeneration"


def mllama(folder: Path) -> str:
    """Llama 3.2 Vision: one `<|image|>` token per image, whatever its size; the image reaches the text
    through cross-attention layers (`cross_attention_mask`), in up to 4 tiles of 16x16."""
    from transformers import MllamaConfig, MllamaForConditionalGeneration, MllamaImageProcessor, MllamaProcessor

    tokenizer = _tokenizer("<|image|>", "<|python_tag|>")
    text = _text_config(len(tokenizer)).to_dict()
    text.update(cross_attention_layers=[1], pad_token_id=tokenizer.eos_token_id)
    config = MllamaConfig(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_global_layers": 1,
                       "attention_heads": 4, "image_size": 16, "patch_size": 8, "max_num_tiles": 4,
                       "vision_output_dim": 64, "intermediate_layers_indices": [0]},
        text_config={k: text[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                          "num_key_value_heads", "vocab_size", "cross_attention_layers", "bos_token_id",
                                          "eos_token_id", "pad_token_id")},
        image_token_index=tokenizer.convert_tokens_to_ids("<|image|>"))
    torch.manual_seed(0)
    MllamaForConditionalGeneration(config).save_pretrained(folder)
    MllamaProcessor(image_processor=MllamaImageProcessor(size={"height": 16, "width": 16}, max_image_tiles=4),
                    tokenizer=tokenizer, chat_template=CHATML_IMAGE.replace("IMAGE", "'<|image|>'")).save_pretrained(folder)
    return "MllamaForConditionalGeneration"


def idefics3(folder: Path) -> str:
    """Idefics3 (SmolVLM's architecture): an image larger than 16 pixels is split into 16x16 tiles plus
    a global view, each written as `<fake_token_around_image><row_i_col_j><image>...` text the
    processor inserts (the row/column tags are ordinary text tokens)."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessorPil, Idefics3Processor

    tokenizer = _tokenizer("<image>")
    images = Idefics3ImageProcessorPil(size={"longest_edge": 32}, max_image_size={"longest_edge": 16},
                                       do_image_splitting=True)
    processor = Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=1,  # (16/8)^2 / 2^2
                                  chat_template=CHATML_IMAGE.replace("IMAGE", "'<image>'"))  # adds its tokens
    config = Idefics3Config(text_config=_text_config(len(tokenizer)).to_dict(), scale_factor=2,
                            vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                           "num_attention_heads": 4, "image_size": 16, "patch_size": 8},
                            image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    torch.manual_seed(0)
    Idefics3ForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return "Idefics3ForConditionalGeneration"


def gemma3(folder: Path) -> str:
    """Gemma 3: the processor replaces each `<start_of_image>` with a blank line, the image's soft tokens
    between begin and end markers, and another blank line (text the walk must step over)."""
    from transformers import AutoTokenizer, Gemma3Config, Gemma3ForConditionalGeneration, Gemma3ImageProcessorPil, \
        Gemma3Processor

    tokenizer = AutoTokenizer.from_pretrained(EXAMPLES / "tiny-llama", extra_special_tokens={
        "boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"})
    tokenizer.add_tokens(["<|im_start|>", "<|im_end|>"], special_tokens=True)
    config = Gemma3Config(
        text_config={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "head_dim": 16, "vocab_size": len(tokenizer), "sliding_window": 64},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                       "image_size": 16, "patch_size": 4},
        mm_tokens_per_image=4, boi_token_index=tokenizer.boi_token_id, eoi_token_index=tokenizer.eoi_token_id,
        image_token_index=tokenizer.image_token_id)
    torch.manual_seed(0)
    Gemma3ForConditionalGeneration(config).save_pretrained(folder)
    Gemma3Processor(image_processor=Gemma3ImageProcessorPil(size={"height": 16, "width": 16}), tokenizer=tokenizer,
                    image_seq_length=4, chat_template=CHATML_IMAGE.replace("IMAGE", "'<start_of_image>'")
                    ).save_pretrained(folder)
    return "Gemma3ForConditionalGeneration"


FAMILIES = {"llava": llava, "llava_next": llava_next, "mllama": mllama, "idefics3": idefics3, "gemma3": gemma3}
# Families whose number of image tokens depends on the image's size.
EXPANDS_PER_SIZE = {"llava_next", "idefics3"}


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request, tmp_path_factory) -> tuple[Path, str, str]:
    folder = tmp_path_factory.mktemp(request.param)
    return folder, FAMILIES[request.param](folder), request.param


@pytest.fixture(scope="module")
def colour_rows(tmp_path_factory) -> Path:
    """Red or blue images of three shapes; the answer is the colour."""
    return write_colour_rows(tmp_path_factory.mktemp("colours"), sizes=[(16, 16), (32, 16), (24, 40)])


def test_labels_follow_the_processors_own_expansion(make_config, family, colour_rows):
    from PIL import Image

    from axo.data.batches import trainer_inputs
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare

    folder, _, name = family
    cfg = make_config(base_model=str(folder), model_type="AutoModelForImageTextToText",
                      datasets=[{"path": str(colour_rows), "type": "chat_template"}], shuffle_merged_datasets=False)
    text = load_processing(cfg)
    data = prepare(cfg, text.tokenizer, text.chat, text.processor)
    rows = [data.train[i] for i in range(3)]  # three image shapes in one batch
    batch = trainer_inputs(cfg, data, text).collator(rows)
    processor = text.processor
    for i, row in enumerate(rows):
        rendered = processor.apply_chat_template(row["messages"], tokenize=False)
        own = processor(text=[rendered], images=[Image.open(row["images"][0]).convert("RGB")])["input_ids"][0]
        ids = batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()
        assert ids == list(own)  # the processor's expansion, untouched
        labels = batch["labels"][i][batch["attention_mask"][i].bool()]
        answer = row["messages"][1]["content"][0]["text"]
        assert processor.tokenizer.decode(torch.tensor(ids)[labels != IGNORE]) == answer + "<|im_end|>"
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    counts = [(batch["input_ids"][i] == image_id).sum().item() for i in range(3)]
    assert (len(set(counts)) > 1) == (name in EXPANDS_PER_SIZE), counts  # shapes expanded differently, or not


def test_the_loss_falls_and_the_output_reloads(make_config, family, colour_rows):
    from transformers import AutoModelForImageTextToText

    folder, model_class, _ = family
    cfg = make_config(base_model=str(folder), model_type="AutoModelForImageTextToText",
                      datasets=[{"path": str(colour_rows), "type": "chat_template"}], max_steps=10,
                      micro_batch_size=4, learning_rate=1e-2)
    train(cfg)
    out = Path(cfg.train.output_dir)
    losses = [e["loss"] for e in read_log_history(out) if "loss" in e]
    assert losses[-1] < 0.5 * losses[0], losses
    assert type(AutoModelForImageTextToText.from_pretrained(out)).__name__ == model_class
    assert (out / "processor_config.json").exists() or (out / "preprocessor_config.json").exists()


def test_image_size_makes_every_image_one_shape(make_config, family, colour_rows):
    """`image_size: 16` pads each image into a 16x16 square (Axolotl's reading), so Llava-Next's tiles
    and Idefics3's splits come out the same for every row."""
    from axo.data.batches import trainer_inputs
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare

    folder, _, name = family
    cfg = make_config(base_model=str(folder), model_type="AutoModelForImageTextToText", image_size=16,
                      image_resize_algorithm="bicubic", datasets=[{"path": str(colour_rows), "type": "chat_template"}],
                      shuffle_merged_datasets=False)
    text = load_processing(cfg)
    data = prepare(cfg, text.tokenizer, text.chat, text.processor)
    batch = trainer_inputs(cfg, data, text).collator([data.train[i] for i in range(3)])
    image_id = text.processor.tokenizer.convert_tokens_to_ids(text.processor.image_token)
    counts = [(ids == image_id).sum().item() for ids in batch["input_ids"]]
    assert len(set(counts)) == 1, counts  # three shapes in, one expansion out


def test_a_corrupt_image_is_a_row_error(make_config, family, colour_rows, tmp_path):
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare
    from axo.errors import AxoError

    folder, _, _ = family
    (tmp_path / "broken.png").write_bytes(b"not a png")
    rows = colour_rows.read_text().splitlines()[:3]
    broken = json.loads(rows[1])
    broken["images"] = [str(tmp_path / "broken.png")]
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join([rows[0], json.dumps(broken), rows[2]]) + "\n")

    def config(**keys):
        return make_config(base_model=str(folder), model_type="AutoModelForImageTextToText", **keys,
                           datasets=[{"path": str(data), "type": "chat_template"}])

    text = load_processing(config())
    with pytest.raises(AxoError, match=r"row 2: field 'images' .*broken.png' is not a readable image"):
        prepare(config(), text.tokenizer, text.chat, text.processor)
    kept = prepare(config(skip_bad_rows=True), text.tokenizer, text.chat, text.processor)
    assert kept.stats[0]["skipped_bad"] == 1 and len(kept.train) == 2
