"""The segmentation plugins (nuclei-segmentation, otsu-watershed) through a real hub; the training script."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scopeflow._util import BUILTIN_PLUGINS
from scopeflow.rpc.client import connect

ROOT = Path(__file__).resolve().parents[2]
FOLDER = BUILTIN_PLUGINS / "nuclei_segmentation"


def module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


synthetic = module(FOLDER / "synthetic.py", "nuclei_synthetic")
metrics = module(FOLDER / "metrics.py", "nuclei_metrics")


def nuclei(seed: int = 5, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    image, labels = synthetic.nuclei_image(np.random.default_rng(seed), size, radius=(7.0, 12.0))
    return (image * 2000).astype(np.uint16), labels


def assert_valid_labels(labels: np.ndarray, shape: tuple[int, ...]) -> None:
    assert labels.shape == shape and labels.dtype == np.int32
    ids = np.unique(labels)
    assert ids[0] == 0 and list(ids) == list(range(len(ids))), "labels are 0 and 1..n without gaps"


@pytest.fixture
async def client(hub):
    server = await connect(hub.url, token=hub.token)
    yield server
    await server.disconnect()


async def test_nuclei_segmentation_labels_nuclei(client):
    image, truth = nuclei()
    plugin = await client.get_plugin("nuclei-segmentation")
    labels = await plugin.segment(image)
    assert_valid_labels(labels, image.shape)
    assert metrics.match(truth, labels)["f1"] > 0.6
    np.testing.assert_array_equal(labels, await plugin.segment(image))  # deterministic
    report = await plugin.assess(image)
    assert report["warnings"] == []
    assert report["statistics"]["objects"] == labels.max()


async def test_seed_height_trades_splitting_for_merging(client):
    """``seed_height`` is the user's say over separation: lower splits touching nuclei into more objects,
    higher merges them into fewer; 0 is the model's own choice."""
    image = nuclei(seed=11, size=192)[0]
    plugin = await client.get_plugin("nuclei-segmentation")
    counts = {h: int((await plugin.segment(image, seed_height=h)).max()) for h in (0.05, 0.0, 0.9)}
    assert counts[0.05] >= counts[0.0] >= counts[0.9] and counts[0.05] > counts[0.9]
    with pytest.raises(Exception, match="seed_height"):
        await plugin.segment(image, seed_height=2)


async def test_nuclei_segmentation_beats_otsu_on_the_real_sample(client):
    """On the real DSB2018 sample (never trained on) the U-Net finds nuclei better than Otsu + watershed."""
    samples = await client.get_plugin("sample-data")
    image, truth = await samples.load("nuclei-2d"), await samples.load("nuclei-2d-labels")
    unet = metrics.match(truth, await (await client.get_plugin("nuclei-segmentation")).segment(image))
    otsu = metrics.match(truth, await (await client.get_plugin("otsu-watershed")).segment(image))
    assert unet["f1"] >= 0.82 and unet["f1"] > otsu["f1"] + 0.10, (unet, otsu)
    assert unet["mean_matched_iou"] > otsu["mean_matched_iou"], (unet, otsu)  # outlines as close as Otsu's


async def test_nuclei_segmentation_any_size_in_tiles(client):
    """Odd sizes and an image larger than one tile (tiles of 512 with margins) keep their shape."""
    plugin = await client.get_plugin("nuclei-segmentation")
    odd = nuclei(6, 128)[0][:101, :77]
    assert_valid_labels(await plugin.segment(odd), odd.shape)
    rng = np.random.default_rng(7)
    big = np.zeros((560, 600), np.uint16)
    truth = np.zeros(big.shape, np.int32)
    for y in range(0, 560, 128):  # a mosaic of synthetic fields: nuclei cross the tile borders
        for x in range(0, 600, 128):
            image, labels = synthetic.nuclei_image(rng, 128, radius=(7.0, 12.0))
            h, w = min(128, 560 - y), min(128, 600 - x)
            big[y : y + h, x : x + w] = (image[:h, :w] * 2000).astype(np.uint16)
            truth[y : y + h, x : x + w] = np.where(labels[:h, :w] > 0, labels[:h, :w] + truth.max(), 0)
    labels = await plugin.segment(big)
    assert_valid_labels(labels, big.shape)
    assert metrics.match(truth, labels)["f1"] > 0.6


async def test_out_of_distribution_warning_reaches_the_app(hub):
    """A nucleus too large even for rescaling: the result still comes back, and the app shows a warning."""
    shown: list[str] = []
    app = await connect(hub.url, token=hub.token, client_id="seg-test-app")
    try:
        await app.register_service({"id": "imjoy-api", "showMessage": shown.append})
        plugin = await app.get_plugin("nuclei-segmentation")
        yy, xx = np.mgrid[0:700, 0:700]
        huge = (((yy - 350) ** 2 + (xx - 345) ** 2) < 330**2) * 1000.0 + 100
        huge += np.random.default_rng(0).normal(0, 20, huge.shape)
        labels = await plugin.segment(huge.astype(np.float32))
        assert_valid_labels(labels, huge.shape)
        report = await plugin.assess(huge.astype(np.float32))
        assert report["warnings"], report
        assert any("px across" in w for w in report["warnings"])
        with pytest.raises(Exception, match="too far"):
            await plugin.segment(huge.astype(np.float32), diameter=1000)
    finally:
        await app.disconnect()
    assert shown and all(text.startswith("⚠ nuclei-segmentation") for text in shown)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((3, 32, 32), np.float32), "2D"),
        (np.zeros((0, 5), np.float32), "empty"),
        (np.full((32, 32), np.nan, np.float32), "NaN"),
        (np.array([["a", "b"], ["c", "d"]]), "numeric"),
    ],
)
async def test_segmentation_rejects_bad_images_clearly(client, image, message):
    for plugin_id in ("nuclei-segmentation", "otsu-watershed"):
        plugin = await client.get_plugin(plugin_id)
        with pytest.raises(Exception, match=message):
            await plugin.segment(image)
    plugin = await client.get_plugin("nuclei-segmentation")
    assert_valid_labels(await plugin.segment(nuclei()[0]), (128, 128))  # still serving


async def test_otsu_watershed_labels_nuclei(client):
    image, truth = nuclei(8)
    plugin = await client.get_plugin("otsu-watershed")
    labels = await plugin.segment(image)
    assert_valid_labels(labels, image.shape)
    assert metrics.match(truth, labels)["f1"] > 0.4
    flat = await plugin.segment(np.ones((20, 20), np.float32))
    assert flat.max() == 0


def test_metrics_match():
    truth = np.zeros((10, 10), np.int32)
    truth[1:4, 1:4], truth[6:9, 6:9] = 1, 2
    pred = np.zeros_like(truth)
    pred[1:4, 1:5], pred[0:2, 7:9] = 5, 9  # one good match (IoU 0.75), one poor (IoU 0.2)
    result = metrics.match(truth, pred)
    assert result["f1"] == pytest.approx(0.5) and result["mean_matched_iou"] == pytest.approx(0.75)
    assert metrics.match(truth, truth)["f1"] == 1.0


def test_training_script_smoke(tmp_path):
    """The training script runs end to end in a tiny configuration, writes loadable weights, and a second
    run with the same seed writes the same weights (on a CPU)."""
    outs = [tmp_path / "weights.pt", tmp_path / "again.pt"]
    for out in outs:
        result = subprocess.run(
            [sys.executable, str(FOLDER / "train.py"), "--smoke", "--cpu", "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "validation" in result.stdout and out.exists()
    plugin = module(BUILTIN_PLUGINS / "nuclei_segmentation.py", "nuclei_plugin_smoke")
    model, again = plugin.load_model(outs[0]), plugin.load_model(outs[1])
    curves = model.info["curves"]
    assert len(curves["train"]) == len(curves["validation"]) >= 2
    assert curves == again.info["curves"]
    for name, tensor in model.state_dict().items():
        assert tensor.equal(again.state_dict()[name]), name
    maps = plugin.predict_maps(model, plugin.normalise(nuclei()[0].astype(np.float32)))
    assert maps[0].shape == maps[1].shape == (128, 128)
    assert model.info["postprocessing"]["seed_height"] > 0


def test_retune_chooses_the_postprocessing_again_and_keeps_the_network(tmp_path):
    """``train.py --retune`` re-chooses the post-processing of trained weights from its grid, records how,
    and leaves the network as it was; a split both trained on and chosen on is refused."""
    trained, retuned = tmp_path / "weights.pt", tmp_path / "retuned.pt"
    smoke = [sys.executable, str(FOLDER / "train.py"), "--smoke", "--cpu"]
    for extra in (["--out", str(trained)], ["--retune", str(trained), "--out", str(retuned)]):
        result = subprocess.run([*smoke, *extra], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    plugin = module(BUILTIN_PLUGINS / "nuclei_segmentation.py", "nuclei_plugin_retune")
    before, after = plugin.load_model(trained), plugin.load_model(retuned)
    for name, tensor in before.state_dict().items():
        assert tensor.equal(after.state_dict()[name]), name
    chosen, record = after.info["postprocessing"], after.info["training"]
    assert f"{chosen['probability']} {chosen['seed_height']}" in record["postprocessing_grid"]
    assert "synthetic" in record["postprocessing_choice"] and after.info["curves"] == before.info["curves"]
    train = module(FOLDER / "train.py", "nuclei_train_parse")
    with pytest.raises(SystemExit):
        train.parse(["--real-splits", "training-data,validation-data"])  # chosen on by default
    assert train.parse(["--real-splits", "training-data,validation-data", "--tune-splits", "test-data"])


def test_contact_weight_marks_where_nuclei_meet():
    train = module(FOLDER / "train.py", "nuclei_train")
    labels = np.zeros((20, 30), np.int32)
    labels[5:15, 2:12], labels[5:15, 12:22], labels[5:15, 26:29] = 1, 2, 3  # 1 and 2 touch, 3 is 4 px off
    weight = train.contact_weight(labels)
    assert weight[10, 11] > 1 and weight[10, 12] > 1  # both sides of the contact
    assert weight[10, 4] == 1 and weight[1, 1] == 1  # inside far from others, background far from all
    assert weight[10, 24] == 1  # a gap of 4 px is beyond the 5x5 reach


@pytest.mark.parametrize("plugin_id", ["nuclei-segmentation", "noise2void"])
def test_model_cards_are_in_the_served_docs(hub, plugin_id):
    """The app shows a plugin's docs: the deep-learning plugins' docs carry their model card with figures."""
    docs = hub.json(f"/api/plugins/{plugin_id}")["docs"]
    for heading in ("## Model card", "**Architecture.**", "**Overtraining check.**", "**Transfer", "**Known"):
        assert heading in docs, heading
    assert "F1@0.5" in docs or "PSNR" in docs


def test_real_training_images_are_read_from_the_wheel_layout(tmp_path):
    """The reader of the real training images (the mnfinder wheel): instance ids from the masks' blue
    channel, one label per separate piece of an id, and a test image with the pixels of a training image
    left out."""
    import io
    import zipfile

    import tifffile
    from PIL import Image as Picture

    real = module(FOLDER / "real.py", "nuclei_real")
    rng = np.random.default_rng(3)
    first, second = (rng.integers(0, 4000, (40, 50)).astype(np.uint16) for _ in range(2))
    mask = np.zeros((40, 50, 4), np.uint8)
    mask[..., 3] = 255
    mask[2:10, 2:10, 2] = 7  # nucleus id 7
    mask[20:30, 5:15, 2] = 9  # id 9, drawn in two pieces
    mask[20:30, 30:40, 2] = 9
    mask[35, 45, 2] = 4  # a 1-px speck
    mask[..., 0] = (mask[..., 2] > 0) * 255

    def tif(array):
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, array)
        return buffer.getvalue()

    def png(array):
        buffer = io.BytesIO()
        Picture.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    wheel = tmp_path / "layout.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for split, name, pixels in [
            ("training-data", "a/images/1.tif", first),
            ("test-data", "b/images/copy.tif", first),  # the same pixels as a training image
            ("test-data", "b/images/2.tif", second),
            ("test-data", "b/images/no-mask.tif", second),
        ]:
            archive.writestr(f"mnfinder/{split}/{name}", tif(pixels))
            if "no-mask" not in name:
                masks = name.replace("/images/", "/nucleus_masks/").replace(".tif", ".png")
                archive.writestr(f"mnfinder/{split}/{masks}", png(mask))
    ((name, image, labels),) = real.read(wheel, "training-data")
    assert name == "a/images/1.tif" and image.dtype == np.float32
    np.testing.assert_array_equal(image, first)
    assert labels.dtype == np.int32 and labels.max() == 3  # id 7, and id 9's two pieces; no speck
    assert len(np.unique(labels[20:30, 5:15])) == 1 and labels[25, 10] != labels[25, 35]
    assert [item[0] for item in real.read(wheel, "test-data")] == ["b/images/2.tif"]
    with pytest.raises(ValueError, match="split"):
        real.read(wheel, "everything")


def test_collages_crowd_real_nuclei_against_each_other():
    """A collage keeps its base image's nuclei and adds cut-out ones against them until it is crowded:
    valid consecutive labels, each nucleus in one piece showing its own pixels, seeded; nuclei cut by the
    border of their image are not cut out."""
    collage = module(FOLDER / "collage.py", "nuclei_collage")
    image, labels = nuclei(seed=11, size=160)
    image = image.astype(np.float32) / 2000
    pieces = collage.cut_out(image, labels)
    border = {*labels[0], *labels[-1], *labels[:, 0], *labels[:, -1]} - {0}
    assert 0 < len(pieces) <= labels.max() - len(border)
    mask = pieces[0][1]
    assert mask.any() and not mask[0].any() and not mask[:, 0].any()  # a rim around every nucleus
    sparse = np.zeros((160, 160), np.float32), np.zeros((160, 160), np.int32)
    sparse[0][40:52, 40:52], sparse[1][40:52, 40:52] = 1.0, 1
    made = [collage.collage(np.random.default_rng(4), sparse, pieces, 128) for _ in range(2)]
    (canvas, found), (again, found_again) = made
    assert np.array_equal(canvas, again) and np.array_equal(found, found_again)
    assert_valid_labels(found, (128, 128))
    assert found.max() >= 8 and (found > 0).mean() >= 0.25  # crowded, from one small nucleus
    from scipy import ndimage

    for index in range(1, found.max() + 1):
        assert ndimage.label(found == index)[1] == 1, f"nucleus {index} in pieces"
    assert canvas[found > 0].mean() > 3 * canvas[found == 0].mean()  # the nuclei's own bright pixels
    _, neighbours = ndimage.label(ndimage.binary_dilation(found > 0))
    assert neighbours < found.max()  # some nuclei touch


def test_a_folder_of_labelled_images_is_read_leaving_out_the_test_image(tmp_path):
    """``real.folder`` (``train.py --real-dir``): images/ beside masks/ in TIFF or PNG, instance masks kept,
    a binary mask split into its pieces, images without a mask skipped, and the test image left out even
    saved at another bit depth, turned, or inside a larger field; a mask of the wrong shape names its file."""
    import tifffile
    from PIL import Image as Picture

    from scopeflow.images import formats as data

    real = module(FOLDER / "real.py", "nuclei_real_folder")
    test_image = np.asarray(data.load_sample("nuclei-2d")[0])
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    image, labels = nuclei(seed=2, size=96)
    tifffile.imwrite(tmp_path / "images" / "a.tif", image)
    tifffile.imwrite(tmp_path / "masks" / "a.tif", labels.astype(np.uint16) * 3)  # ids need not be 1..n
    binary = np.zeros((40, 40), np.uint8)
    binary[2:10, 2:10] = binary[20:30, 20:30] = 255
    Picture.fromarray(binary).save(tmp_path / "images" / "b.png")
    Picture.fromarray(binary).save(tmp_path / "masks" / "b.png")
    tifffile.imwrite(tmp_path / "images" / "unlabelled.tif", image)
    scaled = (test_image.astype(np.float64) / test_image.max() * 255).astype(np.uint8)
    inside = np.zeros((600, 560), np.uint8)
    inside[40:552, 30:542] = np.rot90(scaled, 1)[:, ::-1]
    for name, pixels in (("copy", scaled), ("inside", inside)):
        Picture.fromarray(pixels).save(tmp_path / "images" / f"{name}.png")
        Picture.fromarray(np.ones_like(pixels)).save(tmp_path / "masks" / f"{name}.png")
    found = {name: (im, lab) for name, im, lab in real.folder(tmp_path, [test_image])}
    assert sorted(found) == ["a.tif", "b.png"]
    im, lab = found["a.tif"]
    assert im.dtype == np.float32 and np.array_equal(im, image) and lab.max() == labels.max()
    assert metrics.match(labels, lab)["f1"] == 1.0
    assert found["b.png"][1].max() == 2  # two pieces, two nuclei
    assert len(real.folder(tmp_path)) == 4  # nothing left out without test images
    tifffile.imwrite(tmp_path / "masks" / "a.tif", labels[:50])
    with pytest.raises(ValueError, match=r"a\.tif"):
        real.folder(tmp_path)
    with pytest.raises(ValueError, match="images/"):
        real.folder(tmp_path / "masks")


def test_training_takes_a_folder_of_labelled_images_with_collages_of_them(tmp_path):
    """``train.py --real-dir DIR --collage-fraction F`` trains on the folder's images and on collages of
    their nuclei, and the weights record both."""
    import tifffile

    for sub in ("images", "masks"):
        (tmp_path / "set" / sub).mkdir(parents=True)
    for index in range(3):
        image, labels = nuclei(seed=20 + index, size=96)
        tifffile.imwrite(tmp_path / "set" / "images" / f"{index}.tif", image)
        tifffile.imwrite(tmp_path / "set" / "masks" / f"{index}.tif", labels)
    out = tmp_path / "weights.pt"
    command = [sys.executable, str(FOLDER / "train.py"), "--smoke", "--cpu", "--out", str(out)]
    extra = ["--real-dir", str(tmp_path / "set"), "--collage-fraction", "0.5", "--collages", "4"]
    result = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 labelled images" in result.stdout and "4 + 0 collages" in result.stdout
    plugin = module(BUILTIN_PLUGINS / "nuclei_segmentation.py", "nuclei_plugin_folder")
    note = plugin.load_model(out).info["training"]["data"]
    assert "folder set" in note and "4 collages" in note
