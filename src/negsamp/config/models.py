"""The ``model`` section: one block per model plug-in, each with its own tuned defaults.

Models share no settings at the section level (their tuned learning rates, penalties and
sizes differ), so ``model.name`` picks the block and nothing else: ``--set model.name=ials``
trains ials with ``model.ials``'s settings, and bpr's stay where they are.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from negsamp.config.base import Frozen
from negsamp.config.plugins import PluginSection
from negsamp.config.search import GRADIENT, Dim, Float, Int

Loss = Literal["bpr", "bce", "sampled_softmax", "full_softmax"]
SeqLoss = Literal["bce", "gbce", "sampled_softmax", "full_softmax"]


class _GradientSettings(Frozen):
    """What every model trained by the shared gradient trainer has (defaults tuned per model)."""

    SEARCH_SPACE: ClassVar[dict[str, Dim]] = GRADIENT

    loss: Loss = Field("bce", description="bpr | bce | sampled_softmax | full_softmax")
    lr: float = Field(0.005, gt=0.0, description="tuned learning rate (train.lr overrides)")
    l2: float = Field(3e-4, ge=0.0, description="tuned L2 penalty (train.l2 overrides)")
    init_std: float = Field(0.01, gt=0.0, description="std of the normal initialisation")
    recency_boost: float = Field(
        10.0,
        ge=0.0,
        description="a positive's weight is 1 + boost * exp(-k / window) for the "
        "user's k-th most recent one (0: every positive weighs 1)",
    )
    recency_window: float = Field(10.0, gt=0.0, description="decay, in a user's interactions")


class BPRSettings(_GradientSettings):
    """Matrix factorisation with the pairwise BPR loss (Rendle et al. 2009)."""

    SEARCH_SPACE: ClassVar[dict[str, Dim]] = {"factors": Int(16, 128, log=True)}

    factors: int = Field(64, ge=1)
    item_bias: bool = True
    loss: Loss = "bpr"
    l2: float = Field(3e-3, ge=0.0)


class LMFSettings(_GradientSettings):
    """Logistic matrix factorisation: sigmoid(<p_u, q_i> + b_u + b_i), pointwise BCE."""

    SEARCH_SPACE: ClassVar[dict[str, Dim]] = {"factors": Int(16, 128, log=True)}

    factors: int = Field(64, ge=1)
    l2: float = Field(3e-3, ge=0.0)


class GMFSettings(_GradientSettings):
    """NCF's generalized matrix factorisation: h . (p_u * q_i) (He et al. 2017)."""

    SEARCH_SPACE: ClassVar[dict[str, Dim]] = {"factors": Int(16, 128, log=True)}

    factors: int = Field(64, ge=1)


class MLPSettings(_GradientSettings):
    """NCF's MLP tower over [p_u, q_i]; ``layers`` are the hidden sizes (the first is 2*factors
    in the paper's tower shape)."""

    SEARCH_SPACE: ClassVar[dict[str, Dim]] = {
        "factors": Int(8, 64, log=True),
        "dropout": Float(0.0, 0.5),
    }

    factors: int = Field(32, ge=1, description="embedding size of each side")
    layers: tuple[int, ...] = Field((64, 32, 16), min_length=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    l2: float = Field(1e-4, ge=0.0)


class NeuMFSettings(_GradientSettings):
    """GMF and MLP side by side, joined by one output layer; optionally initialised from
    pretrained GMF and MLP model folders (both or neither), blended with ``alpha``."""

    SEARCH_SPACE: ClassVar[dict[str, Dim]] = {
        "factors": Int(8, 64, log=True),
        "mlp_factors": Int(8, 64, log=True),
    }

    factors: int = Field(32, ge=1, description="GMF embedding size")
    mlp_factors: int = Field(32, ge=1, description="MLP embedding size of each side")
    layers: tuple[int, ...] = Field((64, 32, 16), min_length=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    pretrained_gmf: str | None = Field(None, description="a saved gmf model folder")
    pretrained_mlp: str | None = Field(None, description="a saved mlp model folder")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="weight of GMF's output layer")

    @model_validator(mode="after")
    def _both_or_neither(self) -> NeuMFSettings:
        if (self.pretrained_gmf is None) != (self.pretrained_mlp is None):
            raise ValueError("set both pretrained_gmf and pretrained_mlp, or neither")
        return self


class IALSSettings(Frozen):
    """Implicit ALS / WMF (Hu, Koren, Volinsky 2008): confidence c = 1 + alpha * f * r on
    the observed cells (f: the aggregated ``data.columns.weight`` where one is set, else the
    count of events, or log1p(f / epsilon) with ``confidence: log`` (r = 1 + recency_boost * exp(-k / recency_window) for the user's k-th
    most recent positive; r = 1 with boost 0), weight 1 on every other cell, closed-form
    half-steps. No sampler."""

    SEARCH_SPACE: ClassVar[dict[str, Dim]] = {
        "factors": Int(16, 128, log=True),
        "alpha": Float(0.1, 50.0, log=True),
        "reg": Float(0.1, 500.0, log=True),
    }

    factors: int = Field(64, ge=1)
    alpha: float = Field(3.0, ge=0.0, description="confidence slope: c = 1 + alpha * f")
    confidence: Literal["linear", "log"] = Field(
        "linear", description="linear: c = 1 + alpha * f; log: c = 1 + alpha * log1p(f / epsilon)"
    )
    epsilon: float = Field(1.0, gt=0.0, description="scale of f in the log confidence")
    reg: float = Field(50.0, ge=0.0, description="L2 regularisation lambda of each half-step")
    iterations: int = Field(15, ge=1, description="full iterations (user then item half-step)")
    solver: Literal["cg", "cholesky"] = "cg"
    cg_steps: int = Field(3, ge=1, description="conjugate gradient steps per half-step (cg)")
    init_std: float = Field(0.01, gt=0.0, description="factors start uniform in [0, init_std)")
    recency_boost: float = Field(10.0, ge=0.0, description="extra confidence of recent positives")
    recency_window: float = Field(5.0, gt=0.0, description="decay, in a user's interactions")


class _SequentialSettings(Frozen):
    """What the sequential models share: negatives per position drawn on the fly from
    ``sampler`` (uniform, popularity or in_batch), never an item of the user's training
    sequence unless ``sampler.exclude: none``; scores from the last position."""

    SEARCH_SPACE: ClassVar[dict[str, Dim]] = {
        "hidden": Int(16, 128, log=True),
        "lr": Float(1e-4, 1e-2, log=True),
        "dropout": Float(0.0, 0.5),
    }

    hidden: int = Field(64, ge=1, description="embedding (and encoder) width")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="dropout on embeddings and encoder")
    max_len: int = Field(50, ge=2, description="most recent items a sequence keeps")
    loss: SeqLoss = Field("bce", description="bce | gbce | sampled_softmax | full_softmax")
    gbce_t: float = Field(
        0.75, ge=0.0, le=1.0, description="gBCE calibration t (0: plain BCE, 1: full calibration)"
    )
    bce_offset: bool = Field(
        True,
        description="bce/gbce: logits shifted by -log(n_neg) in the loss (prior odds of a "
        "positive; 0 at n_neg 1, rankings unchanged); false: the papers' plain logits",
    )
    batch_size: int = Field(128, ge=1, description="training sequences per batch")
    lr: float = Field(1e-3, gt=0.0, description="tuned learning rate (train.lr overrides)")
    l2: float = Field(0.0, ge=0.0, description="weight decay (train.l2 overrides)")
    init_std: float = Field(0.02, gt=0.0, description="std of the normal initialisation")


class SASRecSettings(_SequentialSettings):
    """SASRec (Kang & McAuley 2018): causal self-attention over a user's chronological items,
    predicting the next item at every position."""

    num_blocks: int = Field(2, ge=1, description="self-attention blocks")
    num_heads: int = Field(1, ge=1, description="attention heads (hidden % num_heads == 0)")

    @model_validator(mode="after")
    def _heads(self) -> SASRecSettings:
        if self.hidden % self.num_heads:
            raise ValueError(
                f"hidden={self.hidden} is not a multiple of num_heads={self.num_heads}"
            )
        return self


class GRU4RecSettings(_SequentialSettings):
    """GRU4Rec (Hidasi et al. 2016): a GRU over the user's chronological items, trained like
    SASRec (same losses and per-position negatives)."""

    num_layers: int = Field(1, ge=1, description="stacked GRU layers")


class BPRCfg(BPRSettings):
    name: Literal["bpr"] = "bpr"


class LMFCfg(LMFSettings):
    name: Literal["lmf"] = "lmf"


class GMFCfg(GMFSettings):
    name: Literal["gmf"] = "gmf"


class MLPCfg(MLPSettings):
    name: Literal["mlp"] = "mlp"


class NeuMFCfg(NeuMFSettings):
    name: Literal["neumf"] = "neumf"


class IALSCfg(IALSSettings):
    name: Literal["ials"] = "ials"


class SASRecCfg(SASRecSettings):
    name: Literal["sasrec"] = "sasrec"


class GRU4RecCfg(GRU4RecSettings):
    name: Literal["gru4rec"] = "gru4rec"


ModelCfg = Annotated[
    BPRCfg | LMFCfg | GMFCfg | MLPCfg | NeuMFCfg | IALSCfg | SASRecCfg | GRU4RecCfg,
    Field(discriminator="name"),
]

# models fitted in closed form on the positives: no negatives, so no batch-side sampler
CLOSED_FORM = frozenset({"ials"})
# models of a user's item sequence: negatives drawn per position by the trainer, no pool
SEQUENTIAL = frozenset({"sasrec", "gru4rec"})
# the samplers a sequential model draws from on the fly (in_batch: the batch's targets)
SEQUENTIAL_SAMPLERS = ("uniform", "popularity", "in_batch")

ModelName = Literal["bpr", "lmf", "gmf", "mlp", "neumf", "ials", "sasrec", "gru4rec"]


class ModelSection(PluginSection):
    """``model:`` in params.yaml; :attr:`active` is the running model's configuration."""

    SECTION = "model"
    SHARED = ()
    RESOLVED = {
        c.model_fields["name"].default: c
        for c in (BPRCfg, LMFCfg, GMFCfg, MLPCfg, NeuMFCfg, IALSCfg, SASRecCfg, GRU4RecCfg)
    }

    name: ModelName = "bpr"
    bpr: BPRSettings = BPRSettings()
    lmf: LMFSettings = LMFSettings()
    gmf: GMFSettings = GMFSettings()
    mlp: MLPSettings = MLPSettings()
    neumf: NeuMFSettings = NeuMFSettings()
    ials: IALSSettings = IALSSettings()
    sasrec: SASRecSettings = SASRecSettings()
    gru4rec: GRU4RecSettings = GRU4RecSettings()
