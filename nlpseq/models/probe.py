"""A recurrent encoder read out for the long-range probes (``nlpseq.data.probes``).

No embedding is learnt: the encoder reads the raw (value, marker) pairs of the adding
problem or one-hot symbols, as in the papers that introduced the tasks, so all that is
compared is the recurrent cell. The readout is one linear layer: on the final state for
the adding problem (a number) and first-token classification (K classes), on each of the
last M steps for the copy task.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from nlpseq.data.probes import ProbeKind, input_size
from nlpseq.encoders import RecurrentEncoder


class ProbeModel(nn.Module):
    """Encoder + linear readout for one probe.

    Args:
        encoder: builds the encoder given ``input_size`` (a Hydra partial), unidirectional.
        kind: ``adding`` | ``copy`` | ``first_token``.
        num_symbols: K of the symbol tasks; copy_length: M of the copy task.
    """

    def __init__(self, encoder: Callable[..., RecurrentEncoder], kind: ProbeKind,
                 num_symbols: int, copy_length: int) -> None:
        super().__init__()
        self.kind, self.copy_length = kind, copy_length
        self.input_size = input_size(kind, num_symbols)
        self.encoder = encoder(input_size=self.input_size)
        outputs = 1 if kind == "adding" else num_symbols  # symbols 1..K -> classes 0..K-1
        self.readout = nn.Linear(self.encoder.output_size, outputs)

    def encoder_inputs(self, inputs: Tensor) -> Tensor:
        """What the encoder reads: the adding problem's pairs as they are, symbols one-hot.
        Shape: (B, T, 2) or (B, T) -> (B, T, I)."""
        return inputs if self.kind == "adding" else F.one_hot(inputs, self.input_size).float()

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Args: inputs (B, T, 2) float (adding) or (B, T) symbol ids.

        Returns: predictions (B,) for adding, logits (B, K) for first_token and
        (B, M, K) for copy."""
        encoded = self.encoder(self.encoder_inputs(inputs), lengths)
        if self.kind == "copy":
            return self.readout(encoded.outputs[:, -self.copy_length:])  # (B, M, K)
        logits = self.readout(encoded.last_hidden)  # (B, 1) or (B, K)
        return logits.squeeze(-1) if self.kind == "adding" else logits
