"""The five methods through the public Method/Stage API, without the engine."""
import io

import pytest
import torch

import petbench
from petbench.testing import conformance_tests, isolated_host
from petbench_baselines import plugin
from petbench_baselines.argan import ARGAN
from petbench_baselines.autocontext import AutoContext
from petbench_baselines.cvtgan import CVTGAN
from petbench_baselines.cyclegan import CycleGAN
from petbench_baselines.semipet import SemiPET


SIZE = 32
CLASSES = {cls.name: cls for cls in plugin.METHODS}
#: tiny sizes for unit tests on a CPU: the classes' test_options, a higher learning rate
TINY = {name: {**cls.test_options, "lr": 2e-3} for name, cls in CLASSES.items()}
TINY["cyclegan"]["pool_size"] = 4
SOURCES = {
    "cyclegan": ("paired", "unpaired_lpet", "unpaired_spet"),
    "autocontext": ("paired",),
    "argan": ("paired",),
    "cvtgan": ("paired",),
    "semipet": ("paired", "unpaired_lpet", "unpaired_spet"),
}
#: inference parameters of the paper configuration: (low, high)
PAPER_PARAMETERS = {
    "cyclegan": (7.7e6, 7.9e6),      # CycleGAN resnet_6blocks generator, ngf 64: 7.8M
    "autocontext": (0.9e6, 1.2e6),   # 4 modules x (8 conv3x3 of 64 + output): 1.0M
    "argan": (41.9e6, 42.4e6),       # pix2pix unet_128 (41.8M) + rectifier (0.3M)
    "cvtgan": (16.0e6, 17.0e6),      # CVT-GAN generator at width 64 (2D): 16.5M
    "semipet": (41.7e6, 42.0e6),     # unet_128 with region-adaptive decoder norms
}
SUPERVISED_LOSS = {"cyclegan": "sup_l1", "autocontext": "mse_2", "argan": "l1", "cvtgan": "l1", "semipet": "l1"}


def tiny(name, **extra):
    torch.manual_seed(0)
    return CLASSES[name]({**TINY[name], **extra})


def structured_batch(n=4, size=SIZE, seed=0):
    """Smooth hot blobs (SPET) and a noisy, darker copy (LPET); unpaired streams likewise."""
    g = torch.Generator().manual_seed(seed)

    def blobs():
        yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        img = torch.full((n, 1, size, size), 0.05)
        for _ in range(3):
            c = torch.rand(n, 2, generator=g) * (size - 8) + 4
            w = torch.rand(n, generator=g) * 3 + 2
            amp = torch.rand(n, generator=g) + 0.3
            img += (amp.view(n, 1, 1, 1) * torch.exp(-((yy - c[:, 0].view(n, 1, 1, 1)) ** 2
                    + (xx - c[:, 1].view(n, 1, 1, 1)) ** 2) / (2 * w.view(n, 1, 1, 1) ** 2)))
        return img

    def low(spet):
        return (spet + 0.15 * torch.randn(spet.shape, generator=g)).clamp_min(0)

    spet, spet_u = blobs(), blobs()
    return {"lpet": low(spet), "spet": spet, "lpet_u": low(blobs()), "spet_u": spet_u}


def context():
    return petbench.TrainContext(torch.device("cpu"), None, torch.amp.GradScaler(enabled=False))


test_conformance = conformance_tests(plugin)


def test_plugin_registers_the_five_methods():
    host = isolated_host(plugin)
    assert not host.failures
    assert set(CLASSES) <= set(host.methods.names())
    assert {"cyclegan", "autocontext", "argan", "cvtgan", "semipet"} == set(CLASSES)
    for name in CLASSES:
        entry = host.methods.entry(name)
        assert entry.load() is CLASSES[name] and entry.description


@pytest.mark.parametrize("name", list(CLASSES))
def test_presets_and_defaults(name):
    cls = CLASSES[name]
    assert set(cls.presets) >= {"paper", "quick"}
    for preset in cls.presets.values():
        assert set(preset) <= set(cls.defaults)
    assert cls.presets["paper"] == cls.defaults  # defaults are the paper recipe
    quick = cls.presets["quick"]
    assert quick.get("steps_per_epoch") and quick["epochs"] <= 5  # bounded time on a CPU
    with pytest.raises(petbench.UserError):
        cls({"no_such_option": 1})


def test_paper_recipes():
    for name in ("argan", "cvtgan", "semipet"):  # the authoring group's template
        o = CLASSES[name].defaults
        assert (o["lr"], o["beta1"], o["epochs"], o["lambda_l1"]) == (2e-4, 0.9, 100, 100.0)
    o = CycleGAN.defaults
    assert (o["lr"], o["beta1"], o["n_blocks"], o["lambda_cycle"], o["lambda_identity"], o["pool_size"]) == \
        (2e-4, 0.5, 6, 10.0, 5.0, 50)
    assert AutoContext.defaults["modules"] == 4


@pytest.mark.parametrize("name", list(CLASSES))
def test_predict_shape_nonnegative_and_only_lpet(name):
    method = tiny(name)
    lpet = structured_batch(3)["lpet"]
    modes = [m.training for m in method.nets.modules()]
    out = method.predict(lpet)  # the only input: LPET slices
    assert out.shape == lpet.shape and out.dtype == torch.float32
    assert torch.all(out >= 0) and torch.isfinite(out).all() and not out.requires_grad
    assert torch.equal(method.predict(lpet), out)  # eval mode: deterministic (no dropout)
    assert [m.training for m in method.nets.modules()] == modes  # predict leaves modes alone
    assert method.predict(structured_batch(1, size=64)["lpet"]).shape == (1, 1, 64, 64)


@pytest.mark.parametrize("name", list(CLASSES))
def test_sources(name):
    method = tiny(name)
    stages = method.stages()
    assert len(stages) == 1 and stages[0].sources == SOURCES[name]


def test_cyclegan_without_supervision_is_unpaired():
    assert tiny("cyclegan", lambda_sup=0.0).stages()[0].sources == ("unpaired_lpet", "unpaired_spet")


@pytest.mark.parametrize("name", list(CLASSES))
def test_paper_parameter_count(name):
    method = CLASSES[name](preset="paper")
    low, high = PAPER_PARAMETERS[name]
    assert low < method.parameter_count() < high
    assert method.inference_modules() == ["G"]
    assert 1e4 < CLASSES[name](preset="quick").parameter_count() < 2e6


@pytest.mark.parametrize("name", list(CLASSES))
def test_steps_lower_the_supervised_loss(name):
    method = tiny(name)
    stage = method.stages()[0]
    method.nets.train()
    batch, ctx = structured_batch(), context()
    before = float(torch.nn.functional.l1_loss(method.predict(batch["lpet"]), batch["spet"]))
    history = []
    for _ in range(25):
        losses = stage.step(batch, ctx)
        assert all(torch.isfinite(torch.as_tensor(v)) for v in losses.values())
        history.append(float(losses[SUPERVISED_LOSS[name]]))
    assert sum(history[-3:]) < 0.8 * sum(history[:3])
    after = float(torch.nn.functional.l1_loss(method.predict(batch["lpet"]), batch["spet"]))
    assert after < before


def discriminator_inputs(name, size):
    x = torch.rand(2, 1, size, size)
    return {"cyclegan": {"D_S": x, "D_L": x}, "argan": {"D": torch.cat([x, x], 1)},
            "cvtgan": {"D": torch.cat([x, x], 1)}, "semipet": {"D_c": torch.cat([x, x], 1), "D_u": x}}[name]


@pytest.mark.parametrize("name", ["cyclegan", "argan", "cvtgan", "semipet"])
def test_discriminator_output_shapes(name):
    method = tiny(name)
    expected_channels = 8 * TINY["cvtgan"]["d_width"] if name == "cvtgan" else 1
    expected_size = SIZE // 16 if name == "cvtgan" else 2  # CvT D: H/16; 70x70 PatchGAN: 32 -> 2
    for key, x in discriminator_inputs(name, SIZE).items():
        assert method.nets[key](x).shape == (2, expected_channels, expected_size, expected_size)


@pytest.mark.parametrize("name,key,shape", [("cyclegan", "D_S", (1, 1, 14, 14)), ("argan", "D", (1, 1, 14, 14)),
                                            ("semipet", "D_c", (1, 1, 14, 14)), ("cvtgan", "D", (1, 64, 8, 8))])
def test_paper_discriminator_shapes_at_128(name, key, shape):
    d = CLASSES[name](preset="paper").nets[key].eval()
    channels = 2 if name in ("argan", "cvtgan") or key == "D_c" else 1
    with torch.no_grad():
        assert d(torch.rand(1, channels, 128, 128)).shape == shape


@pytest.mark.parametrize("name", list(CLASSES))
def test_checkpoint_round_trip(name):
    method = tiny(name)
    stage = method.stages()[0]
    method.nets.train()
    batch = structured_batch()
    for _ in range(2):
        stage.step(batch, context())
    buffer = io.BytesIO()
    torch.save(method.nets.state_dict(), buffer)
    buffer.seek(0)
    clone = tiny(name)
    clone.nets.load_state_dict(torch.load(buffer, weights_only=True))
    lpet = structured_batch(2, seed=1)["lpet"]
    assert torch.equal(method.predict(lpet), clone.predict(lpet))


def test_autocontext_deep_supervision_and_detach():
    method = tiny("autocontext")
    estimates = method.nets["G"](torch.rand(2, 1, SIZE, SIZE))
    assert len(estimates) == TINY["autocontext"]["modules"]
    detached = tiny("autocontext", detach_context=True)
    lpet = torch.rand(1, 1, SIZE, SIZE)
    estimates = detached.nets["G"](lpet)
    estimates[-1].sum().backward()
    assert all(p.grad is None for p in detached.nets["G"].stages[0].parameters())


def test_argan_output_is_rectified_residual():
    method = tiny("argan")
    method.nets.eval()
    lpet = torch.rand(2, 1, SIZE, SIZE)
    with torch.no_grad():
        preliminary, output = method.nets["G"](lpet)
        expected = lpet + method.nets["G"].rectifier(preliminary - lpet)
    assert torch.allclose(output, expected)


def test_cvtgan_residual_learning():
    method = tiny("cvtgan")
    for p in method.nets["G"].de3.parameters():
        torch.nn.init.zeros_(p)
    lpet = torch.rand(2, 1, SIZE, SIZE)
    assert torch.allclose(method.predict(lpet), lpet)  # a zero decoder output leaves the LPET


def test_schedulers_follow_the_recipe():
    stage = CycleGAN({**TINY["cyclegan"], "epochs": 4, "decay_start": 2, "lr_decay": "linear"}).stages()[0]
    scheduler, optimizer = stage.schedulers["G"], stage.optimizers["G"]
    optimizer.step()  # (no gradients: a no-op that keeps torch from warning about the order)
    lrs = []
    for _ in range(4):
        lrs.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
    assert lrs[0] == lrs[1] == 2e-3 and lrs[1] > lrs[2] > lrs[3] > 0
    stage = ARGAN({**TINY["argan"], "epochs": 5, "decay_start": 2}).stages()[0]  # group template: x0.98
    stage.optimizers["G"].step()
    for _ in range(3):
        stage.schedulers["G"].step()
    assert stage.optimizers["G"].param_groups[0]["lr"] == pytest.approx(2e-3 * 0.98 ** 2)
    assert CVTGAN(TINY["cvtgan"]).stages()[0].schedulers == {}


def test_cyclegan_random_crops_keep_pairs_aligned():
    from petbench_baselines.cyclegan import random_crops

    torch.manual_seed(0)
    batch = structured_batch(2, size=32)
    batch["spet"] = batch["lpet"] * 2  # a pair's crops must come from the same place
    crops = random_crops(batch, 16)
    assert all(v.shape == (2, 1, 16, 16) for v in crops.values())
    assert torch.equal(crops["spet"], crops["lpet"] * 2)
    assert random_crops(batch, 64)["lpet"].shape[-1] == 32  # a crop as big as the slice keeps it
    method = tiny("cyclegan", crop_size=32)
    losses = method.stages()[0].step(structured_batch(size=64), context())
    assert all(torch.isfinite(torch.as_tensor(v)) for v in losses.values())
