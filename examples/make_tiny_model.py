"""Build the tiny model folder the tiny run and the tests start from: a Llama config.json and a
byte-level BPE tokenizer trained here with `tokenizers`. No weights: configs using it set
`reinit_weights: true`. Nothing is downloaded.

    python examples/make_tiny_model.py       # writes examples/tiny-llama/
"""

import sys
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

sys.path.insert(0, str(Path(__file__).parent))
from make_sort_data import TASKS  # noqa: E402

SPECIAL = ["<s>", "</s>"]
ALPACA_WORDS = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
    "### Input:\n### Response:\n"
)


def build_tokenizer(vocab_size: int = 384):
    tok = Tokenizer(models.BPE())
    # Digits stay single tokens so that a list of digits is a list of tokens.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = [ALPACA_WORDS] * 50 + [f"{t}: 1 2 3" for t in TASKS] * 50
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return tok


def main(out: Path = Path(__file__).parent / "tiny-llama") -> None:
    from transformers import LlamaConfig, PreTrainedTokenizerFast

    tok = build_tokenizer()
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    hf_tok.save_pretrained(out)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=128, intermediate_size=256,
        num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=512, tie_word_embeddings=True,
        bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id,
    )
    config.save_pretrained(out)
    print(f"wrote {out} (vocab {tok.get_vocab_size()})")


if __name__ == "__main__":
    main()
