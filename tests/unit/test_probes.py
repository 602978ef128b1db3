"""The long-range probes: deterministic under a seed, labels that follow the definitions,
and batches of the data module that keep every sequence whole."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpseq.data.probe_data import ProbeDataModule
from nlpseq.data.probes import (
    adding_problem,
    chance_level,
    copy_task,
    first_token_task,
    generate,
    input_size,
)
from nlpseq.errors import NlpseqError

seeds = st.integers(0, 2**31 - 1)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 20), length=st.integers(2, 60), seed=seeds)
def test_adding_targets_are_the_sum_of_the_two_marked_values(n, length, seed):
    inputs, targets = adding_problem(n, length, seed)
    assert inputs.shape == (n, length, 2) and targets.shape == (n,)
    values, markers = inputs[..., 0], inputs[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert (markers.sum(1) == 2).all()  # two markers: one in each half
    half = length // 2
    assert (markers[:, :half].sum(1) == 1).all() and (markers[:, half:].sum(1) == 1).all()
    torch.testing.assert_close(targets, (values * markers).sum(1))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 20), copy_length=st.integers(1, 6), delay=st.integers(1, 30),
       symbols=st.integers(2, 9), seed=seeds)
def test_copy_inputs_show_the_symbols_then_a_delimiter_and_ask_them_back(
        n, copy_length, delay, symbols, seed):
    length = 2 * copy_length + delay
    inputs, targets = copy_task(n, length, seed, symbols, copy_length)
    assert inputs.shape == (n, length) and targets.shape == (n, copy_length)
    assert torch.equal(inputs[:, :copy_length], targets)
    assert ((targets >= 1) & (targets <= symbols)).all()
    delimiter = length - copy_length - 1
    assert (inputs[:, delimiter] == symbols + 1).all()
    rest = torch.cat([inputs[:, copy_length:delimiter], inputs[:, delimiter + 1:]], dim=1)
    assert (rest == 0).all()  # blanks everywhere else, the recall steps included


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 20), length=st.integers(1, 60), symbols=st.integers(2, 9), seed=seeds)
def test_the_first_token_label_is_the_first_symbol(n, length, symbols, seed):
    inputs, targets = first_token_task(n, length, seed, symbols)
    assert torch.equal(targets, inputs[:, 0])
    assert ((inputs >= 1) & (inputs <= symbols)).all()


@pytest.mark.parametrize("kind", ["adding", "copy", "first_token"])
def test_the_same_seed_gives_the_same_sequences_and_another_seed_others(kind):
    first = generate(kind, 50, 30, seed=7, num_symbols=8, copy_length=5)
    again = generate(kind, 50, 30, seed=7, num_symbols=8, copy_length=5)
    other = generate(kind, 50, 30, seed=8, num_symbols=8, copy_length=5)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])


def test_a_fixed_seed_gives_these_exact_values_on_every_machine():
    inputs, targets = adding_problem(2, 4, seed=0)
    expected = torch.tensor([[[0.4963, 0.0], [0.7682, 1.0], [0.0885, 0.0], [0.1320, 1.0]],
                             [[0.3074, 0.0], [0.6341, 1.0], [0.4901, 1.0], [0.8964, 0.0]]])
    torch.testing.assert_close(inputs, expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(targets, torch.tensor([0.9003, 1.1242]), atol=1e-4, rtol=0)


def test_chance_levels_and_input_sizes():
    assert chance_level("adding", 8) == pytest.approx(1 / 6)
    assert chance_level("copy", 8) == chance_level("first_token", 8) == 0.125
    # blank + K symbols (+ the copy task's delimiter)
    assert (input_size("adding", 8), input_size("copy", 8), input_size("first_token", 4)) == (
        2, 10, 5)


def test_answering_the_mean_scores_one_sixth_on_the_adding_problem():
    _, targets = adding_problem(200_000, 10, seed=1)
    assert float(((targets - 1.0) ** 2).mean()) == pytest.approx(1 / 6, abs=2e-3)


def test_bad_lengths_name_the_option():
    with pytest.raises(NlpseqError, match=r"data.length >= 2 \* data.copy_length \+ 1 = 21"):
        copy_task(3, 20, seed=0, copy_length=10)
    with pytest.raises(NlpseqError, match="Unknown probe 'adder'"):
        generate("adder", 3, 20, 0, 8, 10)
    with pytest.raises(NlpseqError, match="data.length must be >= 1; got 0"):
        ProbeDataModule("adding", "adding", length=0)


def test_the_data_module_gives_each_split_its_own_sequences_in_whole_batches():
    data = ProbeDataModule("copy", "copy", length=25, copy_length=3, train_size=40,
                           validation_size=10, test_size=10, batch_size=16, eval_batch_size=7)
    data.load()
    batches = list(data.train_dataloader())
    assert sorted(len(b["targets"]) for b in batches) == [8, 16, 16]
    assert sorted(torch.cat([b["index"] for b in batches]).tolist()) == list(range(40))
    batch = batches[0]
    assert batch["inputs"].shape == (len(batch["targets"]), 25)
    assert (batch["lengths"] == 25).all()
    torch.testing.assert_close(batch["inputs"][:, :3], batch["targets"])
    validation, test = data.splits["validation"][0], data.splits["test"][0]
    assert not torch.equal(validation, test)
    again = ProbeDataModule("copy", "copy", length=25, copy_length=3, validation_size=10)
    again.load(("validation",))
    assert torch.equal(again.splits["validation"][0], validation)  # the seed, not the order
