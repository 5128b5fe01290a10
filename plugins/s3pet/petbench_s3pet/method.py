"""S3PET and its Table II variants as petbench methods.

Stages: ``stage1-lpet`` and ``stage1-spet`` pre-train the two DsMAEs on unpaired LPET and SPET
slices (Eq. 1); ``stage2`` fine-tunes the dose encoders inside the bilateral network on paired
slices (Eqs. 2-5). Prediction runs the main branch alone, from LPET.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Mapping

import torch
import torch.nn.functional as F
from petbench import Method, Stage, TrainContext, UserError, adam
from petbench.options import Constraint, at_least, between, greater_than, one_of

from .bilateral import UPSAMPLE_MODES, DoseDecoder, Projector, Tokens, TransferModule, decouple, fuse, token_swap
from .dsmae import MaskedPatchHead, dsmae_loss
from .losses import JS_AXES, js_divergence
from .vit import DoseEncoder, log2_int, pad_to_multiple

#: Bumped whenever Stage I's code changes what it computes, so stale reused results are not used.
STAGE1_FORMAT = 1

#: ``swap_decode``: what the main branch decodes in training (prediction always decodes the transferred
#: tokens, since SPET is not there): ``transferred`` (l_di, ŝ_ds); ``swapped`` (l_di, s_ds), the swapped
#: tokens; ``both``: both, their L1 terms averaged. See the README for the two readings of the paper.
SWAP_DECODES = ("transferred", "swapped", "both")

#: variant -> the components of Table II it has (the baseline is always there).
VARIANTS: dict[str, dict[str, bool]] = {
    "baseline": {"DsMAE": False, "DKD": False, "DKL": False},
    "dsmae": {"DsMAE": True, "DKD": False, "DKL": False},
    "dsmae-dkd": {"DsMAE": True, "DKD": True, "DKL": False},
    "full": {"DsMAE": True, "DKD": True, "DKL": True},
}
LABELS = {"baseline": "Baseline", "dsmae": "+DsMAE", "dsmae-dkd": "+DsMAE+DKD", "full": "S3PET"}
METHOD_NAMES = {"full": "s3pet", "baseline": "s3pet-baseline", "dsmae": "s3pet-dsmae", "dsmae-dkd": "s3pet-dsmae-dkd"}

DEFAULTS: dict[str, Any] = {
    "variant": "full",             # baseline | dsmae | dsmae-dkd | full (Table II rows)
    # dose encoders (ViT); the paper gives only T = depth = 4
    "patch_size": 8,               # a power of two; 8 = the three x2 up-samplings of the decoders
    "embed_dim": 256,
    "depth": 4,                    # T, the number of transformer blocks
    "num_heads": 8,
    "mlp_ratio": 4.0,
    # Stage I (DsMAE)
    "mask_ratio_lpet": 0.75,       # LPET is masked at a higher rate than SPET (paper)
    "mask_ratio_spet": 0.5,
    "stage1_loss_on": "masked",    # masked | all: which patches Eq. 1's L1 covers
    "stage1_epochs": 300,
    "stage1_batch_size": 32,
    "stage1_lr": 2e-4,
    "stage1_steps_per_epoch": None,
    # Stage II (bilateral network)
    "proj_dim": None,              # DKD projector width; None = embed_dim // 2
    "token_fusion": "concat",      # concat | add: how (invariant, specific) tokens form a map
    "transfer_hidden": 0,          # 0 = a single Linear transfer module; > 0 = Linear-GELU-Linear
    "decoder_channels": [256, 128, 64, 32],
    "upsample_mode": "bilinear",   # bilinear | nearest | transpose (learned, kernel = stride)
    "js_axis": "feature",          # feature | token: the softmax axis of the JS divergence
    "js_tau": 1.0,                 # softmax temperature of the JS divergence
    "token_l1": 0.0,               # ours, off: weight of an L1 guard on the raw token pairs JS cannot see
    "swap_decode": "transferred",  # transferred | swapped | both: what the main branch decodes in training
    "gamma": 1.0,                  # Eq. 4
    "lambda1": 1.0,                # Eq. 5, transfer loss
    "lambda2": 5.0,                # Eq. 5, reconstruction loss
    "stage2_epochs": 100,
    "stage2_batch_size": 32,
    "stage2_lr": 2e-4,
    "stage2_steps_per_epoch": None,
    "betas": [0.9, 0.999],         # Adam, both stages
    "lr_schedule": "constant",     # constant | cosine (per step, to 0 at the end of each stage)
}

def patch_fits_the_slice(patch: int, _options, run) -> str | None:
    """A patch larger than the slice leaves one padded token that decodes to zeros (nothing is learnt)."""
    height, width = run.slice_shape
    if height and width and patch > min(height, width):
        return f"is larger than the {height}x{width} slices of dataset {run.dataset!r}; give at most {min(height, width)}"
    return None


#: What each option accepts (the host checks these before any work; see petbench.options).
CONSTRAINTS: dict[str, Constraint] = {
    "patch_size": Constraint(low=1, power_of_two=True, run_check=patch_fits_the_slice),
    "mask_ratio_lpet": between(0, 1, open=True), "mask_ratio_spet": between(0, 1, open=True),
    **{key: at_least(1) for key in ("embed_dim", "depth", "num_heads", "stage1_epochs", "stage2_epochs",
                                    "stage1_batch_size", "stage2_batch_size")},
    **{key: at_least(1, optional=True, kind=int) for key in ("proj_dim", "stage1_steps_per_epoch",
                                                              "stage2_steps_per_epoch")},
    **{key: greater_than(0) for key in ("stage1_lr", "stage2_lr", "js_tau", "mlp_ratio")},
    **{key: at_least(0) for key in ("gamma", "lambda1", "lambda2", "token_l1", "transfer_hidden")},
    "betas": Constraint(length=2, items=between(0, 1, open_high=True)),
    "decoder_channels": Constraint(length=4, items=at_least(1)),
    "stage1_loss_on": one_of("masked", "all"), "token_fusion": one_of("concat", "add"),
    "upsample_mode": one_of(*UPSAMPLE_MODES), "js_axis": one_of(*JS_AXES), "lr_schedule": one_of("constant", "cosine"),
    "swap_decode": one_of(*SWAP_DECODES), "variant": one_of(*VARIANTS),
}

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},  # the defaults are the paper's schedule (Stage I 300, Stage II 100 epochs, batch 32, lr 2e-4)
    "quick": {
        "embed_dim": 64, "num_heads": 4, "decoder_channels": [64, 32, 16, 16],
        "stage1_epochs": 2, "stage1_batch_size": 32, "stage1_steps_per_epoch": 40, "stage1_lr": 1e-3,
        "stage2_epochs": 7, "stage2_batch_size": 16, "stage2_steps_per_epoch": 100, "stage2_lr": 1e-3,
        "lr_schedule": "cosine",
    },
}


class S3PET(Method):
    """S3PET: two-stage semi-supervised LPET->SPET reconstruction via dose-aware token swap."""

    name = "s3pet"
    description = ("S3PET (Cui et al. 2024): DsMAE pre-training on unpaired LPET/SPET, then a bilateral "
                   "network with dose knowledge decoupling and dose-specific token swap/transfer.")
    defaults: ClassVar[dict[str, Any]] = DEFAULTS
    option_constraints: ClassVar[dict[str, Constraint]] = CONSTRAINTS
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    #: what petbench's conformance checks use on top of ``quick``: a tiny, fast model
    test_options: ClassVar[dict[str, Any]] = {
        "embed_dim": 32, "num_heads": 2, "depth": 1, "decoder_channels": [16, 8, 8, 8],
        "stage1_batch_size": 4, "stage2_batch_size": 4, "stage1_epochs": 1, "stage2_epochs": 1,
        "stage1_steps_per_epoch": 2, "stage2_steps_per_epoch": 2}
    #: the variant a registered name stands for (None: chosen by the ``variant`` option)
    fixed_variant: ClassVar[str | None] = None
    #: Table II check marks of this method (an instance has those of its resolved variant)
    components: dict[str, bool] = VARIANTS["full"]
    paper_name: str = LABELS["full"]
    variant_of: str | None = None
    #: how petbench's tables, figures and built-in grids show it: the last row of Table I and II, the row the
    #: others are tested against, "Proposed" in Figure 4 (as the paper), and part of the label-efficiency grid
    display_name = "S3PET"
    table_places: ClassVar[dict] = {1: (70, "S3PET (ours)"), 2: (40, "S3PET")}
    table_reference = True
    figure_labels: ClassVar[dict] = {2: "Proposed"}
    efficiency_place: ClassVar[int | None] = 50
    provenance: ClassVar[str] = "reconstruction"
    provenance_source: ClassVar[str] = "Cui et al., arXiv:2407.20878 (no public code)"
    #: the paper reads two ways here (README, "The token swap read two ways"): every table note says which ran
    noted_options: ClassVar[tuple[str, ...]] = ("swap_decode",)

    def __init__(self, options: Mapping[str, Any] | None = None, preset: str | None = None) -> None:
        super().__init__(options, preset)
        o = self.options
        self.variant = self._check_options(o)
        self.components = dict(VARIANTS[self.variant])
        self.paper_name = LABELS[self.variant]
        self.variant_of = "s3pet" if self.variant != "full" else None
        self.noted_options = ("swap_decode",) if self.variant == "full" else ()  # only the full model swaps
        dsmae, dkd, dkl = (self.components[k] for k in ("DsMAE", "DKD", "DKL"))
        self.patch_size = o["patch_size"]
        dim = o["embed_dim"]
        proj_dim = o["proj_dim"] or dim // 2

        def encoder() -> DoseEncoder:
            return DoseEncoder(o["patch_size"], dim, o["depth"], o["num_heads"], o["mlp_ratio"])

        # Stage-I modules first and in a fixed order: their initial weights do not depend on the
        # variant, so a reused Stage I equals the one this run would have trained.
        self.nets["enc_lpet"] = encoder()
        if dsmae:
            self.nets["mae_head_lpet"] = MaskedPatchHead(dim, o["patch_size"])
        if dkd:  # without DKD the auxiliary branch has no path to the main branch: it is left out
            self.nets["enc_spet"] = encoder()
            if dsmae:
                self.nets["mae_head_spet"] = MaskedPatchHead(dim, o["patch_size"])
            self.nets["proj_inv"] = Projector(dim, proj_dim)  # ONE dose-invariant projector, both doses
            self.nets["proj_spec_lpet"] = Projector(dim, proj_dim)
            self.nets["proj_spec_spet"] = Projector(dim, proj_dim)
        if dkl:
            self.nets["transfer"] = TransferModule(proj_dim, o["transfer_hidden"])
        decoder_in = (2 * proj_dim if o["token_fusion"] == "concat" else proj_dim) if dkd else dim

        def decoder() -> DoseDecoder:
            return DoseDecoder(decoder_in, o["decoder_channels"], o["patch_size"], o["upsample_mode"])

        self.nets["dec_spet"] = decoder()  # main branch: reconstructs SPET
        if dkd:
            self.nets["dec_lpet"] = decoder()  # auxiliary branch: synthesises LPET

    # -- options --------------------------------------------------------------------------
    def _check_options(self, o: dict) -> str:
        owner = f"method {self.name!r}"
        variant = o["variant"]
        if variant not in VARIANTS:
            raise UserError(f"{owner}: unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
        if self.fixed_variant is not None and variant != self.fixed_variant:
            raise UserError(f"{owner} is the {self.fixed_variant!r} variant; use method "
                            f"{METHOD_NAMES[variant]!r} (or s3pet -o variant={variant}) for {variant!r}")
        try:
            log2_int(o["patch_size"])
        except ValueError:
            raise UserError(f"{owner}: patch_size must be a power of two, not {o['patch_size']!r}") from None
        for key in ("mask_ratio_lpet", "mask_ratio_spet"):
            if not (is_number(o[key]) and 0.0 < o[key] < 1.0):
                raise UserError(f"{owner}: {key} must be in (0, 1), not {o[key]!r}")
        choices = {"stage1_loss_on": ("masked", "all"), "token_fusion": ("concat", "add"),
                   "upsample_mode": UPSAMPLE_MODES, "js_axis": tuple(JS_AXES),
                   "lr_schedule": ("constant", "cosine"), "swap_decode": SWAP_DECODES}
        for key, valid in choices.items():
            if o[key] not in valid:
                raise UserError(f"{owner}: {key} must be one of {', '.join(valid)}, not {o[key]!r}")
        for key in ("stage1_lr", "stage2_lr", "js_tau", "mlp_ratio"):
            if not (is_number(o[key]) and o[key] > 0):
                raise UserError(f"{owner}: {key} must be a number > 0, not {o[key]!r}")
        for key in ("gamma", "lambda1", "lambda2", "token_l1"):
            if not (is_number(o[key]) and o[key] >= 0):
                raise UserError(f"{owner}: {key} must be a number >= 0, not {o[key]!r}")
        for key in ("embed_dim", "depth", "num_heads", "stage1_epochs", "stage2_epochs", "stage1_batch_size",
                    "stage2_batch_size"):
            if not (is_integer(o[key]) and o[key] >= 1):
                raise UserError(f"{owner}: {key} must be an integer >= 1, not {o[key]!r}")
        if not (is_integer(o["transfer_hidden"]) and o["transfer_hidden"] >= 0):
            raise UserError(f"{owner}: transfer_hidden must be an integer >= 0, not {o['transfer_hidden']!r}")
        betas = o["betas"]
        if not (isinstance(betas, (list, tuple)) and len(betas) == 2 and all(is_number(b) and 0 <= b < 1
                                                                             for b in betas)):
            raise UserError(f"{owner}: betas must be two numbers in [0, 1) (Adam's beta1, beta2), e.g. "
                            f"[0.9, 0.999], not {betas!r}")
        if o["embed_dim"] % 4 or o["embed_dim"] % o["num_heads"]:
            raise UserError(f"{owner}: embed_dim ({o['embed_dim']}) must be a multiple of 4 and of num_heads "
                            f"({o['num_heads']})")
        for key in ("proj_dim", "stage1_steps_per_epoch", "stage2_steps_per_epoch"):
            if o[key] is not None and (not is_integer(o[key]) or o[key] < 1):
                raise UserError(f"{owner}: {key} must be a positive integer or None, not {o[key]!r}")
        channels = o["decoder_channels"]
        if len(channels) != 4 or not all(is_integer(c) and c >= 1 for c in channels):
            raise UserError(f"{owner}: decoder_channels needs four positive integer widths (four Conv-BN-ReLU "
                            f"blocks), not {channels!r}")
        return variant

    # -- stages ---------------------------------------------------------------------------
    def stage1_reuse_key(self, dose: str) -> dict:
        """What identifies a Stage-I result: the DsMAE's own configuration, never the variant."""
        o = self.options
        return {"family": "s3pet", "stage": f"stage1-{dose}", "format": STAGE1_FORMAT,
                **{k: o[k] for k in ("patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio",
                                     "stage1_loss_on", "stage1_epochs", "stage1_batch_size", "stage1_lr",
                                     "stage1_steps_per_epoch", "betas", "lr_schedule")},
                "mask_ratio": o[f"mask_ratio_{dose}"]}

    def stages(self) -> list[Stage]:
        stages = []
        if self.components["DsMAE"]:
            for dose in ("lpet", "spet") if self.components["DKD"] else ("lpet",):
                stages.append(self._stage(
                    f"stage1-{dose}", "stage1", (f"enc_{dose}", f"mae_head_{dose}"), (f"unpaired_{dose}",),
                    lambda batch, dose=dose: {"loss": self.stage1_loss(dose, batch[f"{dose}_u"])},
                    reuse_key=self.stage1_reuse_key(dose)))
        stages.append(self._stage(
            "stage2", "stage2", tuple(name for name in self.nets if not name.startswith("mae_head_")), ("paired",),
            lambda batch: self.stage2_losses(batch["lpet"], batch["spet"])))
        return stages

    def _stage(self, name: str, prefix: str, modules: tuple[str, ...], sources: tuple[str, ...], losses_fn,
               reuse_key: dict | None = None) -> Stage:
        """A stage optimising ``modules`` with Adam on ``losses_fn(batch)["loss"]`` (the other
        entries are its terms, for the progress bar), with the ``{prefix}_*`` options."""
        o = self.options
        optimizer = adam([p for m in modules for p in self.nets[m].parameters()],  # fused where supported
                         lr=o[f"{prefix}_lr"], betas=tuple(o["betas"]))

        def step(batch: dict, ctx: TrainContext) -> dict:
            losses = losses_fn(batch)
            ctx.backward_step(losses["loss"], optimizer)
            return {key: value.detach() for key, value in losses.items()}

        schedulers = {}
        if o["lr_schedule"] == "cosine":  # the engine sizes it: total = the stage's real number of steps
            schedulers["cosine"] = lambda total: torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step_index: cosine_factor(step_index, total))
        return Stage(name=name, step=step, optimizers={"adam": optimizer}, modules=modules, sources=sources,
                     epochs=o[f"{prefix}_epochs"], batch_size=o[f"{prefix}_batch_size"],
                     steps_per_epoch=o[f"{prefix}_steps_per_epoch"], reuse_key=reuse_key,
                     schedulers=schedulers, schedulers_per="step")

    # -- losses ---------------------------------------------------------------------------
    def stage1_loss(self, dose: str, images: torch.Tensor) -> torch.Tensor:
        """Eq. 1 for the ``dose`` DsMAE on a batch of its unpaired slices (a fresh random mask)."""
        images, _ = pad_to_multiple(images, self.patch_size)
        loss, _mask = dsmae_loss(self.nets[f"enc_{dose}"], self.nets[f"mae_head_{dose}"], images,
                                 self.options[f"mask_ratio_{dose}"], self.options["stage1_loss_on"])
        return loss

    def stage2_losses(self, lpet: torch.Tensor, spet: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eqs. 2-5 on a paired batch; ``loss`` is the total, the others its terms."""
        o = self.options
        out = self.bilateral_forward(lpet, spet)
        # the main branch's term: the mean over what it decoded in training (see ``swap_decode``)
        main_terms = [F.l1_loss(out[key].float(), spet.float()) for key in ("rpet", "rpet_swapped") if key in out]
        rec_main = torch.stack(main_terms).mean()
        losses: dict[str, torch.Tensor] = {}
        if "lpet_syn" in out:
            rec_aux = F.l1_loss(out["lpet_syn"].float(), lpet.float())
            losses["rec_aux"] = rec_aux
            rec = rec_aux + o["gamma"] * rec_main
        else:
            rec = o["gamma"] * rec_main
        losses["rec_main"] = rec_main
        total = o["lambda2"] * rec
        if self.components["DKD"]:
            losses["align"] = js_divergence(out["lpet_tokens"].invariant, out["spet_tokens"].invariant,
                                            o["js_axis"], o["js_tau"])
            total = total + losses["align"]
        if self.components["DKL"]:
            losses["transfer"] = js_divergence(out["spet_specific"], out["spet_specific_pred"],
                                               o["js_axis"], o["js_tau"])
            total = total + o["lambda1"] * losses["transfer"]
        if o["token_l1"] > 0 and self.components["DKD"]:  # ours: sees the shifts the softmax hides
            pairs = [(out["lpet_tokens"].invariant, out["spet_tokens"].invariant)]
            if self.components["DKL"]:
                pairs.append((out["spet_specific"], out["spet_specific_pred"]))
            losses["token_l1"] = torch.stack([F.l1_loss(a.float(), b.float()) for a, b in pairs]).sum()
            total = total + o["token_l1"] * losses["token_l1"]
        return {"loss": total, **losses}

    # -- forward passes -------------------------------------------------------------------
    def bilateral_forward(self, lpet: torch.Tensor, spet: torch.Tensor) -> dict[str, Any]:
        """Stage II's training forward pass on a paired batch (both branches)."""
        lpet, size = pad_to_multiple(lpet, self.patch_size)
        spet, _ = pad_to_multiple(spet, self.patch_size)
        n = self.nets
        grid = n["enc_lpet"].grid(lpet)
        e_lpet = n["enc_lpet"](lpet)
        if not self.components["DKD"]:
            return {"rpet": crop(n["dec_spet"](fuse(e_lpet, None, grid)), size)}
        e_spet = n["enc_spet"](spet)
        lpet_tokens = decouple(e_lpet, n["proj_inv"], n["proj_spec_lpet"])
        spet_tokens = decouple(e_spet, n["proj_inv"], n["proj_spec_spet"])
        out: dict[str, Any] = {"lpet_tokens": lpet_tokens, "spet_tokens": spet_tokens}
        how = self.options["token_fusion"]
        def decode(decoder: str, tokens: Tokens) -> torch.Tensor:
            return crop(n[decoder](fuse(tokens.invariant, tokens.specific, grid, how)), size)

        if self.components["DKL"]:
            to_lpet, to_spet = token_swap(lpet_tokens, spet_tokens)
            predicted = n["transfer"](lpet_tokens.specific)
            out["spet_specific"], out["spet_specific_pred"] = to_spet.specific, predicted
            out["lpet_syn"] = decode("dec_lpet", to_lpet)  # (s_di, l_ds)
            mode = self.options["swap_decode"]
            if mode in ("transferred", "both"):
                out["rpet"] = decode("dec_spet", Tokens(to_spet.invariant, predicted))  # (l_di, ŝ_ds)
            if mode in ("swapped", "both"):
                out["rpet_swapped"] = decode("dec_spet", to_spet)  # (l_di, s_ds)
        else:  # no swap: each branch decodes its own dose's tokens
            out["lpet_syn"] = decode("dec_lpet", spet_tokens)
            out["rpet"] = decode("dec_spet", lpet_tokens)
        return out

    def main_branch(self, lpet: torch.Tensor) -> torch.Tensor:
        """LPET -> RPET through the main branch only (what inference uses); ``lpet`` padded."""
        n = self.nets
        grid = n["enc_lpet"].grid(lpet)
        e_lpet = n["enc_lpet"](lpet)
        if not self.components["DKD"]:
            return n["dec_spet"](fuse(e_lpet, None, grid))
        tokens = decouple(e_lpet, n["proj_inv"], n["proj_spec_lpet"])
        specific = n["transfer"](tokens.specific) if self.components["DKL"] else tokens.specific
        return n["dec_spet"](fuse(tokens.invariant, specific, grid, self.options["token_fusion"]))

    def inference_modules(self) -> list[str]:
        names = ["enc_lpet", "proj_inv", "proj_spec_lpet", "transfer", "dec_spet"]
        return [name for name in names if name in self.nets]

    def predict(self, lpet: torch.Tensor) -> torch.Tensor:
        """Normalised LPET slices ``[B, 1, H, W]`` -> non-negative SPET slices of the same shape."""
        modules = [self.nets[name] for name in self.inference_modules()]
        modes = [m.training for m in modules]
        for m in modules:
            m.eval()
        try:
            with torch.no_grad():
                padded, size = pad_to_multiple(lpet, self.patch_size)
                return crop(self.main_branch(padded), size).clamp_min(0.0).to(lpet.dtype)
        finally:
            for m, mode in zip(modules, modes):
                m.train(mode)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def cosine_factor(step_index: int, total: int) -> float:
    """Half-cosine from 1 (step 0) to 0 (step ``total``): the lr factor of step ``step_index``."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step_index / total, 1.0)))


def crop(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return images[..., : size[0], : size[1]]


class S3PETBaseline(S3PET):
    """S3PET ablation 'Baseline': Stage II only, without DKD and DKL (Table II, row 1)."""

    name = "s3pet-baseline"
    description = "S3PET ablation (Table II) 'Baseline': Stage II alone, no DsMAE pre-training, no DKD, no DKL."
    defaults = {**DEFAULTS, "variant": "baseline"}
    fixed_variant = "baseline"
    components = VARIANTS["baseline"]
    paper_name = LABELS["baseline"]
    variant_of = "s3pet"
    noted_options = ()  # no token swap in this variant
    display_name = "S3PET baseline"
    table_places = {2: (10, LABELS["baseline"])}  # Table II only, before the full method
    table_reference = False
    figure_labels = {}
    efficiency_place = None


class S3PETDsMAE(S3PET):
    """S3PET ablation '+DsMAE': the baseline with Stage-I DsMAE pre-training (Table II, row 2)."""

    name = "s3pet-dsmae"
    description = "S3PET ablation (Table II) '+DsMAE': the baseline with Stage-I DsMAE pre-training."
    defaults = {**DEFAULTS, "variant": "dsmae"}
    fixed_variant = "dsmae"
    components = VARIANTS["dsmae"]
    paper_name = LABELS["dsmae"]
    variant_of = "s3pet"
    noted_options = ()  # no token swap in this variant
    display_name = "S3PET +DsMAE"
    table_places = {2: (20, LABELS["dsmae"])}  # Table II only, before the full method
    table_reference = False
    figure_labels = {}
    efficiency_place = None


class S3PETDsMAEDKD(S3PET):
    """S3PET ablation '+DsMAE+DKD': adds dose knowledge decoupling, no DKL (Table II, row 3)."""

    name = "s3pet-dsmae-dkd"
    description = "S3PET ablation (Table II) '+DsMAE+DKD': DsMAE pre-training and DKD, no token swap/transfer."
    defaults = {**DEFAULTS, "variant": "dsmae-dkd"}
    fixed_variant = "dsmae-dkd"
    components = VARIANTS["dsmae-dkd"]
    paper_name = LABELS["dsmae-dkd"]
    variant_of = "s3pet"
    noted_options = ()  # no token swap in this variant
    display_name = "S3PET +DsMAE+DKD"
    table_places = {2: (30, LABELS["dsmae-dkd"])}  # Table II only, before the full method
    table_reference = False
    figure_labels = {}
    efficiency_place = None


METHODS = (S3PET, S3PETBaseline, S3PETDsMAE, S3PETDsMAEDKD)
