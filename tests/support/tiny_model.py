"""Write a tiny, randomly initialised Llama model and its tokenizer into a folder.

Run with the model server's interpreter (it needs torch, transformers and tokenizers)::

    .venv-model-server/bin/python tests/local/tiny_model.py OUT_DIR

The folder looks like a Hugging Face model repository (config.json, model.safetensors,
tokenizer.json, tokenizer_config.json with TinyLlama's Zephyr-style chat template), so the
real loading, templating and generation code runs on it without any download. The weights are
random: the text is gibberish, but deterministic for a given seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

# TinyLlama-1.1B-Chat-v1.0's chat template, verbatim.
ZEPHYR_CHAT_TEMPLATE = (
    "{% for message in messages %}\n"
    "{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n"
    "{{ '<|assistant|>' }}\n"
    "{% endif %}\n"
    "{% endfor %}"
)
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
TRAINING_TEXT = [
    "What is the capital of France? The capital of France is Paris.",
    "You are a cool and aloof robot, answering questions very briefly and directly.",
    "Paris is a city in Europe. Berlin is the capital of Germany.",
    "Answer the question using only the context below. If the answer is not there, say so.",
    "The quick brown fox jumps over the lazy dog. 0123456789",
]


def build(out_dir: Path, *, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out_dir.mkdir(parents=True, exist_ok=True)
    # Byte-level BPE: lossless decoding, like the real Llama tokenizers, so stop sequences
    # are found in exactly the text that is returned.
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    bos_id = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="</s>",
        chat_template=ZEPHYR_CHAT_TEMPLATE,
    )
    fast.save_pretrained(out_dir)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,  # TinyLlama's context
        bos_token_id=bos_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.eos_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.bos_token_id = bos_id
    model.generation_config.eos_token_id = fast.eos_token_id
    model.generation_config.pad_token_id = fast.eos_token_id
    model.save_pretrained(out_dir)
    return out_dir


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR")
    print(build(Path(sys.argv[1])))
