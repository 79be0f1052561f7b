"""Stack an n-gram head on a serving bundle: one ONNX graph, the serving code unchanged.

A serving bundle's graph maps token ids to 10 rating logits. Stacking adds a second,
cheap model to the same graph and serves the mixture of the two rating distributions::

    logits = log((1 - mix) * softmax(bundle's logits) + mix * softmax(head's logits))

so the output is still named ``logits``, still read as log-probabilities of the 10
ratings, and :mod:`cinesense.model.onnx_predict` and the service need no change.

The head is a linear model over hashed n-grams read from the token ids inside the graph
(like :mod:`cinesense.model.wide`), with one difference that matters for Korean: besides
token n-grams it reads *character* n-grams. A table maps every token id to its characters
(a word-starting token gets a leading space, ``[SEP]`` a closing one), the graph lays them
out in a row, drops the empty slots (a ``TopK`` on positions) and hashes the character
1–4-grams of that text — the features that make the TF-IDF baseline (character n-grams)
stronger than a token-n-gram model. All n-grams share one table of ``buckets`` rows with
one weight per rating, stored as INT8 with one scale per rating; the head's logits are the
sum of the n-grams' rows divided by the square root of their count, plus a bias.

The same hashing runs in NumPy (:class:`NgramFeatures`) to train the head, so the graph is
checked against NumPy (parity) before a bundle is written. The head trains on every
training review with the fine-tuning loss (rating cross-entropy plus the class-weighted
binary cross-entropy of the same logits) by Adagrad over sparse rows; the epoch and the
mix are chosen on validation reviews only. The rating calibration is refitted on
validation reviews for the mixture, because the served expected rating changes with it.
Stacking a bundle that already carries a stacked head replaces that head: the graph is
first taken back to its base.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cinesense.data.dataset import NEUTRAL, Dataset, balanced_binary, class_weights
from cinesense.errors import ModelError
from cinesense.files import atomic_directory, sha256_file
from cinesense.model.balance import balanced_label_map, fit_rating
from cinesense.model.heads import LABEL_MAP_FILE, NUM_RATINGS, LabelMap
from cinesense.model.onnx_predict import OnnxPredictor, verify_bundle, write_bundle_manifest
from cinesense.model.rating import RatingCalibration
from cinesense.model.wide import MIX_GRID, binary_accuracy, fit_mix
from cinesense.text import normalize_review

log = logging.getLogger(__name__)

PREFIX = "ngram_head/"  # every node, tensor and weight the stacking adds
BASE_LOGITS = PREFIX + "base_logits"  # the bundle's own logits, renamed
METADATA_KEY = "cinesense.stacked_head"
PRIME = 1_000_003
MODULUS = 2**31 - 1  # codes stay below 2**31, so code * PRIME + id fits in int64
SALT = 7919
CHAR_FAMILY = 100  # char n-grams hash apart from token n-grams of the same order
SPACE, UNKNOWN = 0, 1  # character codes; real characters start at 2
PARITY_TOLERANCE = 1e-4
PARITY_REVIEWS = 300
MAX_VALIDATION_SAMPLE = 8000  # the sample the train benchmark reports (finetune's)
MAX_CALIBRATION_REVIEWS = 30000
EXPORT_EVALUATION_REVIEWS = 20000  # the test sample build_serving_bundle checks INT8 on


@dataclass(frozen=True)
class NgramConfig:
    buckets: int = 2**18
    char_orders: tuple[int, ...] = (1, 2, 3, 4)
    token_orders: tuple[int, ...] = (1, 2)


@dataclass(frozen=True)
class HeadTraining:
    """Measured on the full corpus (validation, benchmarks/RESULTS.md): Adagrad at 0.3
    decaying over two epochs, the first epoch best; lower rates underfit, more passes
    overfit."""

    epochs: int = 2
    learning_rate: float = 0.3
    batch_size: int = 256
    seed: int = 13


# --- features: token ids → hashed n-grams (NumPy; the graph below computes the same) ----


def char_table(tokenizer_file: Path) -> np.ndarray:
    """Characters of every token id, ``(vocabulary, 1 + longest token)``, -1 where a slot
    is empty.

    A token that starts a word begins with a space, a ``##`` continuation does not;
    ``[SEP]`` (the end of every text) is one space and ``[UNK]`` a space and the unknown
    mark; the other special tokens have no characters."""
    model = json.loads(Path(tokenizer_file).read_text())["model"]
    if model.get("type") != "WordPiece":
        raise ModelError(f"{tokenizer_file}: the n-gram head reads WordPiece vocabularies only.")
    vocab: dict[str, int] = model["vocab"]
    prefix = model.get("continuing_subword_prefix", "##")

    def special(token: str) -> bool:
        return token.startswith("[") and token.endswith("]")

    def text(token: str) -> str:
        return token[len(prefix) :] if token.startswith(prefix) else token

    letters = sorted({ch for token in vocab if not special(token) for ch in text(token)})
    code = {ch: i + 2 for i, ch in enumerate(letters)}
    rows: dict[int, list[int]] = {}
    for token, index in vocab.items():
        if token == "[SEP]":
            rows[index] = [SPACE]
        elif token == "[UNK]":
            rows[index] = [SPACE, UNKNOWN]
        elif not special(token):
            start = [] if token.startswith(prefix) else [SPACE]
            rows[index] = start + [code[c] for c in text(token)]
    table = np.full((len(vocab), max(map(len, rows.values()))), -1, dtype=np.int16)
    for index, row in rows.items():
        table[index, : len(row)] = row
    return table


def _grams(
    codes: np.ndarray, valid: np.ndarray, orders: tuple[int, ...], family: int, buckets: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Bucket and validity of every n-gram of ``codes`` (n, length) for each order."""
    length = codes.shape[1]
    found, inside_all = [], []
    for order in orders:
        end = length - order + 1
        if end <= 0:
            continue
        code, inside = codes[:, :end].copy(), valid[:, :end].copy()
        for k in range(1, order):
            code = (code * PRIME + codes[:, k : end + k]) % MODULUS
            inside &= valid[:, k : end + k]
        found.append((code + (family + order) * SALT) % buckets)
        inside_all.append(inside)
    return found, inside_all


@dataclass
class NgramFeatures:
    """Hashed token and character n-grams of token ids, as the stacked graph hashes them."""

    config: NgramConfig
    chars: np.ndarray  # char_table(...)

    @classmethod
    def for_tokenizer(cls, tokenizer_file: Path, config: NgramConfig) -> NgramFeatures:
        return cls(config, char_table(tokenizer_file))

    def buckets(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Buckets ``(n, m)`` and whether each n-gram lies wholly inside its text."""
        ids, mask = np.asarray(ids, np.int64), np.asarray(mask).astype(bool)
        n = ids.shape[0]
        found, valid = _grams(ids, mask, self.config.token_orders, 0, self.config.buckets)
        if self.config.char_orders:
            chars = self.chars[ids].astype(np.int64)
            present = (chars >= 0) & mask[:, :, None]
            chars, present = chars.reshape(n, -1), present.reshape(n, -1)
            order = np.argsort(~present, axis=1, kind="stable")  # characters first, in order
            chars = np.take_along_axis(chars, order, axis=1)
            present = np.take_along_axis(present, order, axis=1)
            width = max(int(present.sum(axis=1).max()), 1)
            more, inside = _grams(
                chars[:, :width],
                present[:, :width],
                self.config.char_orders,
                CHAR_FAMILY,
                self.config.buckets,
            )
            found, valid = found + more, valid + inside
        return np.concatenate(found, axis=1), np.concatenate(valid, axis=1)

    def matrix(self, ids: list[list[int]], chunk: int = 20000) -> sp.csr_matrix:
        """Rows of n-gram counts divided by the square root of the text's n-gram count."""
        parts = []
        for start in range(0, len(ids), chunk):
            padded, mask = pad_ids(ids[start : start + chunk])
            buckets, valid = self.buckets(padded, mask)
            count = valid.sum(axis=1)
            rows = np.repeat(np.arange(len(padded)), count)
            values = np.repeat(1.0 / np.sqrt(np.maximum(count, 1)), count)
            part = sp.csr_matrix(
                (values.astype(np.float32), (rows, buckets[valid])),
                shape=(len(padded), self.config.buckets),
            )
            part.sum_duplicates()
            parts.append(part)
        return sp.vstack(parts).tocsr()


def pad_ids(ids: list[list[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(row) for row in ids)
    padded = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for i, row in enumerate(ids):
        padded[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return padded, mask


# --- the head: training and INT8 storage -------------------------------------------------


@dataclass
class NgramHead:
    """Rating logits = features @ table + bias; the table kept as INT8 with a scale per
    rating (symmetric, the largest weight of a rating maps to 127)."""

    config: NgramConfig
    table: np.ndarray  # int8 (buckets, 10)
    scales: np.ndarray  # float32 (10,)
    bias: np.ndarray  # float32 (10,)

    @classmethod
    def quantize(cls, config: NgramConfig, weights: np.ndarray, bias: np.ndarray) -> NgramHead:
        peak = np.abs(weights).max(axis=0)
        scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        table = np.clip(np.rint(weights / scales), -127, 127).astype(np.int8)
        return cls(config, table, scales, np.asarray(bias, np.float32))

    def weights(self) -> np.ndarray:
        return self.table.astype(np.float32) * self.scales

    def logits(self, features: sp.csr_matrix) -> np.ndarray:
        return np.asarray(features @ self.weights(), np.float64) + self.bias


def train_ngram_head(
    features: sp.csr_matrix,
    ratings: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    label_map: LabelMap,
    options: HeadTraining,
    on_epoch,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, float]]]:
    """Fit float weights ``(buckets, 10)`` and bias with the fine-tuning loss.

    ``ratings`` are 0–9 (-100: none), ``labels`` 0/1 (-100: neutral), ``weights`` the
    class weights of the binary loss. Adagrad over sparse rows, the learning rate decaying
    linearly to zero; ``on_epoch(weights, bias)`` scores an epoch on validation reviews and
    the best epoch's weights are returned with the per-epoch history."""
    import torch

    from cinesense.model.finetune import review_loss

    torch.manual_seed(options.seed)
    table = torch.nn.EmbeddingBag(features.shape[1], NUM_RATINGS, mode="sum", sparse=True)
    torch.nn.init.zeros_(table.weight)
    bias = torch.nn.Parameter(torch.zeros(NUM_RATINGS))
    optimizer = torch.optim.Adagrad([table.weight, bias], lr=options.learning_rate)
    targets = torch.tensor(ratings), torch.tensor(labels)
    class_weight = torch.tensor(weights, dtype=torch.float32)
    steps = options.epochs * -(-features.shape[0] // options.batch_size)

    def step(rows: np.ndarray, done: int) -> None:
        batch = features[rows]
        logits = bias + table(
            torch.from_numpy(batch.indices.astype(np.int64)),
            torch.from_numpy(batch.indptr[:-1].astype(np.int64)),
            per_sample_weights=torch.from_numpy(batch.data),
        )
        loss = review_loss(logits, targets[0][rows], targets[1][rows], class_weight, label_map)
        optimizer.zero_grad()
        loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = options.learning_rate * (1 - done / steps)
        optimizer.step()

    rng = np.random.default_rng(options.seed)
    done, history = 0, []
    best: tuple[float, np.ndarray | None, np.ndarray | None] = (-1.0, None, None)
    started = time.monotonic()
    for epoch in range(1, options.epochs + 1):
        order = rng.permutation(features.shape[0])
        # Adagrad builds its sparse updates from valid indices: checking them is overhead.
        with torch.sparse.check_sparse_tensor_invariants(enable=False):
            for start in range(0, len(order), options.batch_size):
                step(order[start : start + options.batch_size], done)
                done += 1
        epoch_weights = table.weight.detach().numpy().copy()
        epoch_bias = bias.detach().numpy().copy()
        score = float(on_epoch(epoch_weights, epoch_bias))
        minutes = round((time.monotonic() - started) / 60, 2)
        history.append({"epoch": epoch, "validation_accuracy_combined": score, "minutes": minutes})
        log.info("n-gram head epoch %d: validation %.4f (%.1f min)", epoch, score, minutes)
        if score > best[0]:
            best = (score, epoch_weights, epoch_bias)
    assert best[1] is not None and best[2] is not None
    return best[1], best[2], history


# --- the graph ---------------------------------------------------------------------------


class _Graph:
    """Nodes and initializers under :data:`PREFIX`, with unique names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self.count = 0

    def name(self, what: str) -> str:
        self.count += 1
        return f"{PREFIX}{what}_{self.count}"

    def const(self, value, dtype=np.int64) -> str:
        from onnx import numpy_helper

        name = self.name("const")
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weight(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(value, PREFIX + name))
        return PREFIX + name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attributes) -> list[str]:
        from onnx import helper

        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(
            helper.make_node(op_type, list(inputs), names, name=names[0], **attributes)
        )
        return names

    def one(self, op_type: str, *inputs: str, **attributes) -> str:
        return self.op(op_type, *inputs, **attributes)[0]

    def grams(
        self, codes: str, valid: str, orders: tuple[int, ...], family: int, buckets: int
    ) -> tuple[list[str], list[str]]:
        """The graph's :func:`_grams`: ``codes`` int64 and ``valid`` int64 (batch, length)."""
        axis = self.const([1])
        found, inside_all = [], []
        for order in orders:
            pieces = []
            for k in range(order):
                stop = k - (order - 1)
                end = self.const([stop if stop < 0 else np.iinfo(np.int64).max])
                start = self.const([k])
                pieces.append(
                    (
                        self.one("Slice", codes, start, end, axis),
                        self.one("Slice", valid, start, end, axis),
                    )
                )
            code, inside = pieces[0]
            for piece, piece_valid in pieces[1:]:
                code = self.one("Mul", code, self.const(PRIME))
                code = self.one("Mod", self.one("Add", code, piece), self.const(MODULUS), fmod=0)
                inside = self.one("Mul", inside, piece_valid)
            salted = self.one("Add", code, self.const((family + order) * SALT))
            found.append(self.one("Mod", salted, self.const(buckets), fmod=0))
            inside_all.append(inside)
        return found, inside_all


def head_graph(features: NgramFeatures, head: NgramHead) -> tuple[_Graph, str]:
    """Nodes computing the head's logits from ``input_ids`` and ``attention_mask``."""
    from onnx import TensorProto

    config = features.config
    g = _Graph()
    found, valid = g.grams("input_ids", "attention_mask", config.token_orders, 0, config.buckets)
    if config.char_orders:
        chars = g.one("Gather", g.weight("chars", features.chars), "input_ids", axis=0)
        chars = g.one("Cast", chars, to=TensorProto.INT64)  # (batch, length, slots)
        present = g.one("Greater", chars, g.const(-1))
        in_text = g.one(
            "Cast", g.one("Unsqueeze", "attention_mask", g.const([2])), to=TensorProto.BOOL
        )
        present = g.one("And", present, in_text)
        flat = g.const([0, -1])
        chars = g.one("Reshape", chars, flat)
        present = g.one("Reshape", present, flat)
        # Characters first, in text order: sort positions, empty slots pushed past the end.
        width = g.one("Gather", g.one("Shape", chars), g.const(1), axis=0)
        positions = g.one("Range", g.const(0), width, g.const(1))
        empty = g.one("Cast", g.one("Not", present), to=TensorProto.INT64)
        key = g.one("Add", positions, g.one("Mul", empty, width))
        width_1d = g.one("Unsqueeze", width, g.const([0]))
        _, order = g.op("TopK", key, width_1d, outputs=2, axis=1, largest=0, sorted=1)
        chars = g.one("GatherElements", chars, order, axis=1)
        present = g.one(
            "GatherElements", g.one("Cast", present, to=TensorProto.INT64), order, axis=1
        )
        more, inside = g.grams(chars, present, config.char_orders, CHAR_FAMILY, config.buckets)
        found, valid = found + more, valid + inside
    buckets = g.one("Concat", *found, axis=1)
    valid_f = g.one("Cast", g.one("Concat", *valid, axis=1), to=TensorProto.FLOAT)
    count = g.one("ReduceSum", valid_f, g.const([1]), keepdims=1)
    norm = g.one("Sqrt", g.one("Max", count, g.const(1.0, np.float32)))
    rows = g.one("Gather", g.weight("table", head.table), buckets, axis=0)
    rows = g.one("Cast", rows, to=TensorProto.FLOAT)
    rows = g.one("Mul", rows, g.one("Unsqueeze", valid_f, g.const([2])))
    summed = g.one("ReduceSum", rows, g.const([1]), keepdims=0)
    scaled = g.one("Mul", summed, g.weight("scales", head.scales))
    logits = g.one("Add", g.one("Div", scaled, norm), g.weight("bias", head.bias))
    return g, logits


def base_model(model):
    """The graph without a stacked head (itself when it has none)."""
    import onnx

    if not any(p.key == METADATA_KEY for p in model.metadata_props):
        return model
    base = onnx.ModelProto()
    base.CopyFrom(model)
    graph = base.graph
    keep = [n for n in graph.node if not n.name.startswith(PREFIX)]
    del graph.node[:]
    graph.node.extend(keep)
    keep_init = [t for t in graph.initializer if not t.name.startswith(PREFIX)]
    del graph.initializer[:]
    graph.initializer.extend(keep_init)
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == BASE_LOGITS:
                node.output[i] = "logits"
    kept = [p for p in base.metadata_props if p.key != METADATA_KEY]
    del base.metadata_props[:]
    base.metadata_props.extend(kept)
    return base


def stack_model(base, features: NgramFeatures, head: NgramHead, mix: float, description: dict):
    """``base`` (an ONNX model with output ``logits``) with the head mixed in at ``mix``."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(base_model(base))
    graph = model.graph
    if [o.name for o in graph.output] != ["logits"]:
        raise ModelError("The bundle's graph must have the single output 'logits'.")
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == "logits":
                node.output[i] = BASE_LOGITS
    g, head_logits = head_graph(features, head)
    deep = g.one("Softmax", BASE_LOGITS, axis=-1)
    wide = g.one("Softmax", head_logits, axis=-1)
    mixed = g.one(
        "Add",
        g.one("Mul", deep, g.const(1.0 - mix, np.float32)),
        g.one("Mul", wide, g.const(mix, np.float32)),
    )
    clipped = g.one("Clip", mixed, g.const(1e-12, np.float32))
    g.nodes.append(onnx.helper.make_node("Log", [clipped], ["logits"], name=PREFIX + "log"))
    graph.node.extend(g.nodes)
    graph.initializer.extend(g.initializers)
    model.metadata_props.add(key=METADATA_KEY, value=json.dumps(description))
    return model


def mixture(deep: np.ndarray, wide: np.ndarray, mix: float) -> np.ndarray:
    """NumPy twin of the graph's mixture (and of :func:`cinesense.model.wide.mixture_logits`)."""

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    return np.log(np.maximum((1 - mix) * softmax(deep) + mix * softmax(wide), 1e-12))


# --- a bundle in, a stacked bundle out ---------------------------------------------------


@dataclass
class StackResult:
    directory: Path
    manifest: dict
    report: dict[str, object] = field(default_factory=dict)


def _encode(predictor: OnnxPredictor, texts: list[str]) -> list[list[int]]:
    """Token ids exactly as the service computes them (normalized, truncated)."""
    return [e.ids for e in predictor.tokenizer.encode_batch([normalize_review(t) for t in texts])]


def _targets(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    ratings = (rows["rating"].fillna(-99).astype(int) - 1).to_numpy()
    ratings = np.where(ratings >= 0, ratings, -100)
    labels = rows["label"].where(rows["label"] != NEUTRAL, -100).to_numpy(np.int64)
    return ratings.astype(np.int64), labels


def stack_bundle(
    bundle_dir: Path,
    dataset: Dataset,
    out_dir: Path,
    config: NgramConfig = NgramConfig(),
    training: HeadTraining = HeadTraining(),
    threads: int | None = None,
) -> StackResult:
    """Train an n-gram head for the bundle at ``bundle_dir`` on ``dataset`` and write the
    stacked bundle to ``out_dir``. Only the train split trains and only the validation
    split chooses (the epoch, the mix, the rating calibration); the test split is not read.
    A mix of 0 (the head does not help on validation) still writes a bundle, whose report
    says so."""
    bundle_dir, out_dir = Path(bundle_dir), Path(out_dir)
    manifest = verify_bundle(bundle_dir)
    base = OnnxPredictor(bundle_dir, manifest, threads=threads)
    label_map = base.label_map
    seed = training.seed
    import onnx

    base_graph = base_model(onnx.load(str(bundle_dir / manifest["served_file"])))
    features = NgramFeatures.for_tokenizer(bundle_dir / "tokenizer.json", config)

    train = dataset["train"]
    train = train[train["rating"].notna() | (train["label"] != NEUTRAL)].reset_index(drop=True)
    validation = dataset["validation"]
    tuning = balanced_binary(validation, seed)  # chooses the epoch and the mix
    sample = validation_sample(validation, seed)
    started = time.monotonic()
    train_x = features.matrix(_encode(base, list(train["text"])))
    tuning_x = features.matrix(_encode(base, list(tuning["text"])))
    log.info("n-gram features: %.1f min", (time.monotonic() - started) / 60)
    deep = _base_logits(base, base_graph, tuning["text"])
    tuning_labels = tuning["label"].to_numpy()

    def on_epoch(weights: np.ndarray, bias: np.ndarray) -> float:
        head = NgramHead.quantize(config, weights, bias)
        return fit_mix(deep, head.logits(tuning_x), tuning_labels, label_map)[1]

    ratings, labels = _targets(train)
    weights, bias, history = train_ngram_head(
        train_x, ratings, labels, class_weights(train["label"]), label_map, training, on_epoch
    )
    del train_x
    float_logits = np.asarray(tuning_x @ weights, np.float64) + bias
    head = NgramHead.quantize(config, weights, bias)
    wide = head.logits(tuning_x)
    mix, combined = fit_mix(deep, wide, tuning_labels, label_map)
    description = {
        **asdict(config),
        "mix": mix,
        "table": "int8, one scale per rating",
        "base_sha256": _base_info(manifest, sha256_file(bundle_dir / manifest["served_file"]))[
            "served_file_sha256"
        ],
    }
    stacked = stack_model(base_graph, features, head, mix, description)
    minutes = round((time.monotonic() - started) / 60, 2)

    with atomic_directory(out_dir) as staging:
        served = manifest["served_file"]
        onnx.save(stacked, str(staging / served))
        for name in ("tokenizer.json", LABEL_MAP_FILE):
            shutil.copy(bundle_dir / name, staging / name)
        shutil.copy(bundle_dir / "rating_calibration.json", staging / "rating_calibration.json")
        draft = {k: v for k, v in manifest.items() if k not in ("files", "sizes_mb", "shipped")}
        stacked_predictor = OnnxPredictor(staging, draft, threads=threads)
        parity = _check_parity(stacked_predictor, base, features, head, mix, validation, seed)
        tuning_served = stacked_predictor.logits(list(tuning["text"])).astype(np.float64)
        served_map = balanced_label_map(tuning_served, tuning_labels, label_map)
        served_map.save(staging)
        _fit_calibration(stacked_predictor, served_map, validation, seed).save(staging)
        stacked_predictor = OnnxPredictor(staging, draft, threads=threads)
        sample_logits = stacked_predictor.logits(list(sample["text"])).astype(np.float64)
        report = {
            **asdict(config),
            "mix": mix,
            "kept": mix > 0,
            "training": asdict(training),
            "epochs": history,
            "minutes": minutes,
            "train_reviews": len(train),
            "validation_reviews": len(tuning),
            "validation_accuracy_base": _accuracy(deep, tuning_labels, label_map),
            "validation_accuracy_head_float": _accuracy(float_logits, tuning_labels, label_map),
            "validation_accuracy_head": _accuracy(wide, tuning_labels, label_map),
            "validation_accuracy_combined": round(combined, 4),
            "validation_accuracy_served": _accuracy(tuning_served, tuning_labels, served_map),
            "positive_offset": served_map.positive_offset,
            "validation_sample_reviews": len(sample),
            "validation_sample_accuracy_base": _accuracy(
                deep[tuning.index.get_indexer(sample.index)], sample["label"], label_map
            ),
            "validation_sample_accuracy": _accuracy(sample_logits, sample["label"], served_map),
            "mix_grid": [MIX_GRID[0], MIX_GRID[-1]],
            "parity_max_abs_diff": parity,
            "parity_reviews": PARITY_REVIEWS,
            "table_mb": round(head.table.nbytes / 2**20, 2),
            "base": _base_info(manifest, description["base_sha256"]),
            "note": (
                "accuracy_fp32, accuracy_int8, accuracy_delta, parity_max_abs_diff and reason "
                "at the top level are the base graph's export checks (BERT, INT8); this "
                "section holds the stacked head's own."
            ),
        }
        new_manifest = {
            **draft,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "stacked_head": report,
        }
        write_bundle_manifest(staging, new_manifest)
    log.info("stacked bundle %s: %s", out_dir, json.dumps(report, default=str))
    return StackResult(out_dir, verify_bundle(out_dir), report)


def validation_sample(validation: pd.DataFrame, seed: int = HeadTraining.seed) -> pd.DataFrame:
    """The class-balanced validation sample whose accuracy the train benchmark reports and
    compares with the shipped bundle's."""
    tuning = balanced_binary(validation, seed)
    return tuning.sample(n=min(MAX_VALIDATION_SAMPLE, len(tuning)), random_state=seed)


def _base_info(manifest: dict, base_sha256: str) -> dict[str, object]:
    """What the head was stacked on: the bundle itself, or the base of a stacked bundle."""
    earlier = (manifest.get("stacked_head") or {}).get("base")
    if earlier:
        return earlier
    return {
        "served_file_sha256": base_sha256,
        "created_at": manifest.get("created_at"),
        "shipped": manifest.get("shipped"),
    }


def _accuracy(logits: np.ndarray, labels, label_map: LabelMap) -> float:
    return round(binary_accuracy(np.asarray(logits), np.asarray(labels), label_map), 4)


def _base_logits(base: OnnxPredictor, graph, texts: pd.Series) -> np.ndarray:
    """The base graph's logits (the bundle's own, or its base when it was stacked)."""
    import copy

    import onnxruntime as ort

    predictor = copy.copy(base)  # the same tokenizer and threads, another graph
    predictor.session = ort.InferenceSession(
        graph.SerializeToString(), base.session.get_session_options(), ["CPUExecutionProvider"]
    )
    return predictor.logits(list(texts)).astype(np.float64)


def _check_parity(
    stacked: OnnxPredictor,
    base: OnnxPredictor,
    features: NgramFeatures,
    head: NgramHead,
    mix: float,
    validation: pd.DataFrame,
    seed: int,
) -> float:
    """The stacked graph's logits against the mixture computed in NumPy from the base
    graph's logits and the NumPy head, text by text (no padding between texts)."""
    texts = list(
        validation["text"].sample(n=min(PARITY_REVIEWS, len(validation)), random_state=seed)
    )
    texts += ["가" * 300, "ㅋ", "정말 재밌어요 10점!!", "최악. 돈 아깝다 [UNK]"]
    ids = _encode(stacked, texts)
    wide = head.logits(features.matrix(ids))
    import onnx

    graph = base_model(onnx.load(str(stacked.directory / stacked.manifest["served_file"])))
    deep = _base_logits(base, graph, pd.Series(texts))
    expected = mixture(deep, wide, mix)
    actual = stacked.logits(texts).astype(np.float64)
    difference = float(np.abs(actual - expected).max())
    if difference > PARITY_TOLERANCE:
        raise ModelError(
            f"The stacked graph does not match NumPy (max |logit difference| {difference:.2e} "
            f"> {PARITY_TOLERANCE:.0e}); the bundle was not written."
        )
    return difference


def _fit_calibration(
    predictor: OnnxPredictor, label_map: LabelMap, validation: pd.DataFrame, seed: int
) -> RatingCalibration:
    rated = validation[validation["rating"].notna()]
    rated = rated.sample(n=min(MAX_CALIBRATION_REVIEWS, len(rated)), random_state=seed)
    return fit_rating(rated, predictor.logits(list(rated["text"])).astype(np.float64), label_map)
