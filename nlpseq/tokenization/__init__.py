"""Tokenizers with fixed special ids (<pad>=0, <unk>=1, <bos>=2, <eos>=3), trained from a split.

`conf/tokenizer/*.yaml` build one through `train_tokenizers_tokenizer` (word, bpe,
wordpiece, char) or `train_sentencepiece` (sp_unigram, sp_bpe).
"""

from nlpseq.tokenization.base import (
    BOS,
    BOS_ID,
    EOS,
    EOS_ID,
    PAD,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK,
    UNK_ID,
    Tokenizer,
    load_tokenizer,
    tokenizer_from_state,
)
from nlpseq.tokenization.hf import TokenizersTokenizer, train_tokenizers_tokenizer
from nlpseq.tokenization.pair import TokenizerPair, train_tokenizer_pair
from nlpseq.tokenization.spm import SentencePieceTokenizer, train_sentencepiece

__all__ = [
    "BOS",
    "BOS_ID",
    "EOS",
    "EOS_ID",
    "PAD",
    "PAD_ID",
    "SPECIAL_TOKENS",
    "UNK",
    "UNK_ID",
    "SentencePieceTokenizer",
    "Tokenizer",
    "TokenizerPair",
    "TokenizersTokenizer",
    "load_tokenizer",
    "tokenizer_from_state",
    "train_sentencepiece",
    "train_tokenizer_pair",
    "train_tokenizers_tokenizer",
]
