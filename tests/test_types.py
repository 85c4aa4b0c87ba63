import numpy as np
import pytest

from worldgen import Camera, DepthMap, GaussianCloud, InputError, Mesh, MeshScene, Panorama, SemanticLayers, ShapeError
from worldgen.types import linear_to_srgb, srgb_to_linear


class TestPanorama:
    def test_smoke(self):
        p = Panorama(np.zeros((4, 8, 3), np.float32))
        assert (p.height, p.width) == (4, 8)
        assert not p.image.flags.writeable

    @pytest.mark.parametrize("shape", [(4, 4, 3), (4, 9, 3), (8, 4, 3)])
    def test_exception_not_2to1(self, shape):
        with pytest.raises(InputError, match="2:1"):
            Panorama(np.zeros(shape, np.float32))

    def test_exception_values(self):
        with pytest.raises(InputError, match="non-finite"):
            Panorama(np.full((2, 4, 3), np.nan, np.float32))
        with pytest.raises(InputError, match=r"\[0, 1\]"):
            Panorama(np.full((2, 4, 3), 2.0, np.float32))
        with pytest.raises(ShapeError):
            Panorama(np.zeros((2, 4), np.float32))

    def test_feature_uint8_roundtrip(self, rng):
        img = rng.integers(0, 256, (16, 32, 3), dtype=np.uint8)
        assert np.array_equal(Panorama.from_uint8(img).to_uint8(), img)

    def test_feature_transfer(self):
        x = np.linspace(0, 1, 101, dtype=np.float32)
        assert np.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)
        assert srgb_to_linear(np.float32(0.5)) == pytest.approx(0.21404, abs=1e-4)


class TestDepthMap:
    def test_smoke(self):
        d = DepthMap.from_array(np.array([[1.0, np.inf], [0.0, 2.0]], np.float32))
        assert d.sky.tolist() == [[False, True], [True, False]]
        assert np.isposinf(d.depth[1, 0])
        assert d.valid.sum() == 2

    def test_exception(self):
        with pytest.raises(InputError, match="NaN"):
            DepthMap.from_array(np.array([[np.nan, 1.0]]))
        with pytest.raises(InputError, match="negative"):
            DepthMap.from_array(np.array([[-1.0, 1.0]]))
        with pytest.raises(InputError, match="infinite outside"):
            DepthMap(np.array([[np.inf, 1.0]]), np.zeros((1, 2), bool))
        with pytest.raises(ShapeError):
            DepthMap(np.ones((2, 2)), np.zeros((2, 3), bool))

    def test_feature_sky_forced_inf(self):
        d = DepthMap(np.ones((1, 2)), np.array([[True, False]]))
        assert np.isposinf(d.depth[0, 0]) and d.depth[0, 1] == 1.0


def test_semantics():
    s = SemanticLayers(np.array([[0, 1], [2, 1]], np.uint8))
    assert s.mask("terrain").sum() == 2
    with pytest.raises(InputError, match="no class name"):
        SemanticLayers(np.array([[200]], np.uint8))
    with pytest.raises(InputError, match="sky"):
        SemanticLayers(np.zeros((1, 1), np.uint8), ("ground",))
    with pytest.raises(InputError, match="unknown semantic class"):
        s.mask("dragon")


def test_camera():
    c = Camera.perspective(64, 32, 90.0)
    assert c.fx == pytest.approx(32.0) and c.cx == 32 and c.cy == 16
    assert np.allclose(c.world_to_cam, np.eye(4))
    with pytest.raises(InputError, match="2:1"):
        Camera("equirect", 10, 10)
    with pytest.raises(InputError, match="field of view"):
        Camera.perspective(8, 8, 180.0)


class TestGaussianCloud:
    def _cloud(self, n=5, k=1):
        rng = np.random.default_rng(0)
        return GaussianCloud(
            rng.normal(size=(n, 3)),
            np.tile([2.0, 0, 0, 0], (n, 1)),
            np.full((n, 3), -2.0),
            np.zeros(n),
            rng.normal(size=(n, k, 3)),
        )

    def test_smoke(self):
        g = self._cloud(k=16)
        assert len(g) == 5 and g.sh_degree == 3
        assert np.allclose(g.quats, [1, 0, 0, 0])  # normalised
        assert np.allclose(g.opacities, 0.5) and np.allclose(g.scales, np.exp(-2))

    def test_exception(self):
        with pytest.raises(InputError, match="coefficients"):
            self._cloud(k=5)
        with pytest.raises(InputError, match="non-finite"):
            GaussianCloud(np.full((1, 3), np.nan), [[1, 0, 0, 0]], np.zeros((1, 3)), np.zeros(1), np.zeros((1, 1, 3)))
        with pytest.raises(ShapeError):
            GaussianCloud(np.zeros((2, 3)), np.zeros((3, 4)), np.zeros((2, 3)), np.zeros(2), np.zeros((2, 1, 3)))

    def test_feature_from_activated(self):
        g = GaussianCloud.from_activated(
            np.zeros((2, 3)), [[1, 0, 0, 0]] * 2, np.full((2, 3), 0.1), [1.0, 0.25], colors=[[1, 0, 0], [0.5, 0.5, 0.5]]
        )
        assert np.isfinite(g.opacity_logits).all()  # opacity 1.0 clamped, never an infinite logit
        assert np.allclose(g.colors, [[1, 0, 0], [0.5, 0.5, 0.5]], atol=1e-6)
        assert g.subset(np.array([1])).opacities[0] == pytest.approx(0.25)


def test_mesh():
    m = Mesh(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]]))
    assert np.allclose(m.face_normals, [[0, 0, 1]])
    assert np.allclose(m.bounds, [[0, 0, 0], [1, 1, 0]])
    with pytest.raises(InputError, match="outside"):
        Mesh(np.zeros((3, 3)), np.array([[0, 1, 3]]))
    with pytest.raises(InputError, match="8-bit"):
        Mesh(np.zeros((3, 3)), np.array([[0, 1, 2]]), texture=np.zeros((2, 2, 3), np.float32))
    with pytest.raises(InputError, match="part name"):
        MeshScene({"bad name": m})
    assert "world" in MeshScene({"world": m})


def test_gaussian_cloud_concatenate_pads_sh():
    from worldgen.types import GaussianCloud

    a = GaussianCloud.from_activated(
        np.zeros((2, 3)),
        np.tile([1.0, 0, 0, 0], (2, 1)),
        np.full((2, 3), 0.1),
        np.full(2, 0.5),
        colors=np.full((2, 3), 0.2),
    )
    b = GaussianCloud.from_activated(
        np.ones((3, 3)), np.tile([1.0, 0, 0, 0], (3, 1)), np.full((3, 3), 0.2), np.full(3, 0.7), sh=np.ones((3, 4, 3))
    )
    c = GaussianCloud.concatenate([a, b])
    assert len(c) == 5 and c.sh_degree == 1
    assert np.array_equal(c.means[2:], b.means) and np.all(c.sh[:2, 1:] == 0)
    with pytest.raises(InputError):
        GaussianCloud.concatenate([])
