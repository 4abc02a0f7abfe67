"""Multimodal families, each built tiny from its own config classes with a processor constructed
locally (examples/make_tiny_multimodal.py; nothing downloads): the labels follow the processor's own
expansion of the image or audio tokens (only the assistant's answer trains), the loss falls, and the
output reloads in plain transformers. Images of several sizes and clips of two lengths, so families
that tile or resize per image (Llava-Next's anyres) or count frames expand them differently within
one batch."""

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from axo.data.media import expanding_tokens
from axo.data.tokenize import IGNORE
from axo.train.sft import train
from conftest import read_log_history
from make_tiny_multimodal import AUDIO, FAMILIES, TORCHVISION, write_colour_rows, write_tone_rows

# Families whose number of image or audio tokens depends on the image's size or the clip's length.
EXPANDS_PER_SIZE = {"llava_next", "idefics3", "gemma3_pan_and_scan", "qwen2_audio", "qwen2_vl", "qwen2_5_vl",
                    "mistral3"}
# A family's model with options: Gemma 3 with pan-and-scan (a wide or tall image also becomes crops).
VARIANTS = {"gemma3_pan_and_scan": ("gemma3", {"processor_kwargs": {
    "do_pan_and_scan": True, "pan_and_scan_min_crop_size": 8, "pan_and_scan_max_num_crops": 2}})}


@dataclass(frozen=True)
class Family:
    name: str
    folder: Path
    model_class: str

    @property
    def keys(self) -> dict:
        """The config keys that train it."""
        return {"base_model": str(self.folder), "model_type": "AutoModelForMultimodalLM",
                **VARIANTS.get(self.name, ("", {}))[1]}


@pytest.fixture(scope="module", params=[*FAMILIES, *VARIANTS])
def family(request, tmp_path_factory) -> Family:
    if request.param in TORCHVISION and importlib.util.find_spec("torchvision") is None:
        pytest.skip("its processor needs torchvision, which has no build for this machine's CPU torch "
                    "(bench/gpu_check.sh runs these where it is installed)")
    folder = tmp_path_factory.mktemp(request.param)
    build = FAMILIES[VARIANTS[request.param][0] if request.param in VARIANTS else request.param]
    return Family(request.param, folder, build(folder))


@pytest.fixture(scope="module")
def rows(family, tmp_path_factory) -> Path:
    """Red or blue images of three shapes (the answer is the colour), or low or high tones of two
    lengths (the answer is the pitch)."""
    if family.name in AUDIO:
        return write_tone_rows(tmp_path_factory.mktemp("tones"), seconds=[0.3, 0.6])
    return write_colour_rows(tmp_path_factory.mktemp("colours"), sizes=[(16, 16), (32, 16), (24, 40)])


def own_expansion(processor, row: dict, template: str | None = None) -> list[int]:
    """The ids of the processor's own apply_chat_template for a row, its images or clips given by path
    in the message parts (where the processor's own loaders read them)."""
    files = iter(row.get("images") or row.get("audios"))
    messages = [{**m, "content": [{**part, "path": next(files)} if part["type"] in ("image", "audio") else part
                                  for part in m["content"]]} for m in row["messages"]]
    return list(processor.apply_chat_template(messages, chat_template=template, tokenize=True,
                                              return_dict=True)["input_ids"][0])


def test_labels_follow_the_processors_own_expansion(make_config, family, rows):
    from axo.data.batches import trainer_inputs
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare

    name = family.name
    cfg = make_config(**family.keys,
                      datasets=[{"path": str(rows), "type": "chat_template"}], shuffle_merged_datasets=False)
    text = load_processing(cfg)
    data = prepare(cfg, text.tokenizer, text.chat, text.processor)
    first = [data.train[i] for i in range(3)]  # three image shapes (two clip lengths) in one batch
    batch = trainer_inputs(cfg, data, text).collator(first)
    processor = text.processor
    assert data.stats[0]["images"] + data.stats[0]["audio_clips"] == 16  # counted by `axo preprocess`
    for i, row in enumerate(first):
        ids = batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()
        assert ids == own_expansion(processor, row)  # the processor's expansion, untouched
        labels = batch["labels"][i][batch["attention_mask"][i].bool()]
        answer = row["messages"][1]["content"][0]["text"]
        assert processor.tokenizer.decode(torch.tensor(ids)[labels != IGNORE]) == answer + "<|im_end|>"
    [expanding] = expanding_tokens(processor)
    counts = [(batch["input_ids"][i] == expanding).sum().item() for i in range(3)]
    assert (len(set(counts)) > 1) == (name in EXPANDS_PER_SIZE), counts  # sizes expanded differently, or not


# Families whose rows pack (data/media.py PACKABLE); the others say why not.
PACKED = {"llava", "llava_next", "idefics3", "qwen2_audio"}


def test_packed_rows_give_the_unpacked_loss_or_the_family_says_why_not(make_config, family, rows, caplog):
    """`sample_packing` puts several conversations, with their images or clips, in one sequence whose
    position_ids restart at each: the loss over two packs equals the loss over their rows unpacked.
    A family whose model cannot keep packed rows apart trains each conversation whole, and the run
    says why."""
    from transformers import AutoModelForMultimodalLM

    from axo.data.batches import trainer_inputs
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare
    from axo.model.patches import apply_patches

    name = family.name
    cfg = make_config(**family.keys, sample_packing=True,
                      sequence_len=256, datasets=[{"path": str(rows), "type": "chat_template"}])
    text = load_processing(cfg)
    data = prepare(cfg, text.tokenizer, text.chat, text.processor)
    with caplog.at_level("WARNING", logger="axo"):
        inputs = trainer_inputs(cfg, data, text)
    if name not in PACKED:
        reason = {"mllama": "cross-attention mask", "qwen2_vl": "M-RoPE", "qwen2_5_vl": "M-RoPE",
                  "mistral3": "has not verified"}.get(name, "attend to each other both ways")  # (Gemma 3)
        assert f"rows are not packed for {type(text.processor).__name__}: " in caplog.text and reason in caplog.text
        assert len(inputs.train) == 16 and inputs.collator([inputs.train[i] for i in range(4)])["input_ids"].shape[0] == 4
        return
    assert "not packed" not in caplog.text
    packs = [inputs.train[i]["pack"] for i in range(len(inputs.train))]
    assert len(packs) < 16 and sorted(len(p) for p in packs)[-1] > 1 and sum(map(len, packs)) == 16
    packed = inputs.collator([{"pack": p} for p in packs[:2]])
    plain = inputs.collator([row for p in packs[:2] for row in p])
    assert packed["input_ids"].shape[0] == 2 and (packed["labels"] != IGNORE).sum() == (plain["labels"] != IGNORE).sum()
    model = AutoModelForMultimodalLM.from_pretrained(family.folder).eval()
    model.config.use_cache = False  # as the Trainer sets it
    assert apply_patches(model, cfg) == ["no KV cache in a multimodal model's parts"]  # (else rows mix)
    with torch.no_grad():
        torch.testing.assert_close(model(**packed).loss, model(**plain).loss, rtol=1e-5, atol=1e-5)


# Axolotl's named template of each family built here that has one.
NAMED = {"llava": "llava", "gemma3": "gemma3", "mllama": "llama3_2_vision", "qwen2_vl": "qwen2_vl",
         "qwen2_5_vl": "qwen2_vl", "mistral3": "pixtral"}


def test_named_templates_place_the_image_where_the_processor_expands_it(make_config, family, rows):
    """`chat_template: gemma3` (and the others) write the family's turns and its image placeholder;
    the processor expands that placeholder, and only the answer and its end of turn train."""
    from axo.data.batches import trainer_inputs
    from axo.data.chat import load_processing
    from axo.data.family_templates import FAMILIES as TEMPLATES
    from axo.data.prepare import prepare

    name = family.name
    if name not in NAMED:
        pytest.skip(f"Axolotl has no named template for {name}")
    cfg = make_config(**family.keys, chat_template=NAMED[name],
                      datasets=[{"path": str(rows), "type": "chat_template"}], shuffle_merged_datasets=False)
    text = load_processing(cfg)
    data = prepare(cfg, text.tokenizer, text.chat, text.processor)
    batch = trainer_inputs(cfg, data, text).collator([data.train[0], data.train[1]])
    end = TEMPLATES[NAMED[name]].ends["assistant"].replace("{eos}", text.tokenizer.eos_token)
    for i in range(2):
        row = data.train[i]
        ids = batch["input_ids"][i][batch["attention_mask"][i].bool()]
        assert ids.tolist() == own_expansion(text.processor, row, text.tokenizer.chat_template)
        labels = batch["labels"][i][batch["attention_mask"][i].bool()]
        answer = row["messages"][1]["content"][0]["text"]
        # (Llava's " red " : the space after "ASSISTANT:" and the answer are one token)
        assert text.tokenizer.decode(ids[labels != IGNORE]).strip() == (answer + end).strip()


def test_the_loss_falls_and_the_output_reloads(make_config, family, rows):
    from transformers import AutoModelForMultimodalLM, AutoProcessor

    keys = {k: v for k, v in family.keys.items() if k != "model_type"}
    cfg = make_config(**keys, processor_type="AutoProcessor",  # the model class from processor_type
                      datasets=[{"path": str(rows), "type": "chat_template"}], max_steps=10,
                      micro_batch_size=4, learning_rate=1e-2)
    train(cfg)
    out = Path(cfg.train.output_dir)
    losses = [e["loss"] for e in read_log_history(out) if "loss" in e]
    assert losses[-1] < 0.5 * losses[0], losses
    assert type(AutoModelForMultimodalLM.from_pretrained(out)).__name__ == family.model_class
    # the saved processor expands rows as training did (its options, e.g. pan-and-scan, included)
    from axo.data.chat import load_processing

    row = json.loads(rows.read_text().splitlines()[1])
    assert own_expansion(AutoProcessor.from_pretrained(out), row) == own_expansion(load_processing(cfg).processor, row)
    assert (out / "processor_config.json").exists() or (out / "preprocessor_config.json").exists()


def test_lora_adapts_the_language_model_only(make_config, family):
    """`lora_target_linear` on each family: adapters on the language model's layers, none on the vision
    or audio tower or its projector (whatever the family calls them)."""
    from transformers import AutoModelForMultimodalLM

    from axo.model.adapters import apply_adapter

    cfg = make_config(**family.keys, adapter="lora",
                      lora_target_linear=True, datasets=[{"path": "x.jsonl", "type": "chat_template"}])
    model = apply_adapter(AutoModelForMultimodalLM.from_pretrained(family.folder), cfg)
    adapted = {n.split(".lora_")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert adapted and all(".language_model." in n or ".text_model." in n for n in adapted), adapted
    assert any(n.endswith("q_proj") for n in adapted) and any(n.endswith("down_proj") for n in adapted)


def test_processor_kwargs_set_the_processors_options(make_config, family):
    """Axolotl's `processor_kwargs`: options the processor loads with (and saves); a name no part of it
    knows is an error that suggests the close one."""
    from axo.data.chat import load_processing
    from axo.errors import AxoError

    name = family.name
    option, typo = (("sampling_rate", 16000), "sampling_rates") if name in AUDIO else (("do_normalize", False), "do_normalise")

    def config(**options):
        return make_config(**{**family.keys, "processor_kwargs": options},
                           datasets=[{"path": "x.jsonl", "type": "chat_template"}])

    processor = load_processing(config(**dict([option]))).processor
    part = processor.feature_extractor if name in AUDIO else processor.image_processor
    assert getattr(part, option[0]) == option[1]
    with pytest.raises(AxoError, match=rf"`processor_kwargs`: \w+ has no option '{typo}' .did you mean '{option[0]}'"):
        load_processing(config(**{typo: option[1]}))


def test_image_size_makes_every_image_one_shape(make_config, family, rows):
    """`image_size: 16` pads each image into a 16x16 square (Axolotl's reading), so Llava-Next's tiles
    and Idefics3's splits come out the same for every row."""
    from axo.data.batches import trainer_inputs
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare

    name = family.name
    if name in AUDIO:
        pytest.skip("audio rows have no images")
    cfg = make_config(**family.keys, image_size=16,
                      image_resize_algorithm="bicubic", datasets=[{"path": str(rows), "type": "chat_template"}],
                      shuffle_merged_datasets=False)
    text = load_processing(cfg)
    data = prepare(cfg, text.tokenizer, text.chat, text.processor)
    batch = trainer_inputs(cfg, data, text).collator([data.train[i] for i in range(3)])
    image_id = text.processor.tokenizer.convert_tokens_to_ids(text.processor.image_token)
    counts = [(ids == image_id).sum().item() for ids in batch["input_ids"]]
    assert len(set(counts)) == 1, counts  # three shapes in, one expansion out


def test_a_corrupt_image_or_audio_file_is_a_row_error(make_config, family, rows, tmp_path):
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare
    from axo.errors import AxoError

    name = family.name
    field, kind = ("audios", "audio file") if name in AUDIO else ("images", "image")
    broken_file = tmp_path / ("broken.wav" if name in AUDIO else "broken.png")
    broken_file.write_bytes(b"RIFF not really")
    lines = rows.read_text().splitlines()[:3]
    broken = json.loads(lines[1])
    broken[field] = [str(broken_file)]
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join([lines[0], json.dumps(broken), lines[2]]) + "\n")

    def config(**keys):
        return make_config(**family.keys, **keys,
                           datasets=[{"path": str(data), "type": "chat_template"}])

    text = load_processing(config())
    with pytest.raises(AxoError, match=rf"row 2: field '{field}' .*{broken_file.name}' is not a readable {kind}"):
        prepare(config(), text.tokenizer, text.chat, text.processor)
    kept = prepare(config(skip_bad_rows=True), text.tokenizer, text.chat, text.processor)
    assert kept.stats[0]["skipped_bad"] == 1 and len(kept.train) == 2
