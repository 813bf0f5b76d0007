import pytest
import torch

from world_model.tokenizer import TokenizerConfig, VideoTokenizer, group_frames


@pytest.mark.parametrize(
    ("downsample", "compression", "num_frames", "latent_frames"),
    [(8, 1, 3, 3), (4, 1, 2, 2), (8, 4, 9, 3), (8, 4, 1, 1)],
)
def test_encode_decode_shapes(downsample, compression, num_frames, latent_frames):
    cfg = TokenizerConfig(
        latent_channels=8, spatial_downsample=downsample, temporal_compression=compression, base_channels=8
    )
    tok = VideoTokenizer(cfg)
    frames = torch.rand(2, num_frames, 3, 96, 96) * 2 - 1
    posterior = tok.encode(frames)
    side = 96 // downsample
    assert posterior.mean.shape == (2, latent_frames, 8, side, side)
    assert posterior.logvar.shape == posterior.mean.shape
    assert cfg.num_latent_frames(num_frames) == latent_frames
    assert tok.decode(posterior.mean).shape == frames.shape
    recon, post = tok(frames, generator=torch.Generator().manual_seed(0))
    assert recon.shape == frames.shape
    kl = post.kl()
    assert kl.ndim == 0 and kl >= 0


def test_kl_is_zero_for_standard_normal():
    from world_model.tokenizer import LatentDistribution

    z = torch.zeros(1, 1, 2, 3, 3)
    assert LatentDistribution(z, z).kl() == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"spatial_downsample": 3}, "power of two"),
        ({"image_size": 100, "spatial_downsample": 8}, "not divisible"),
        ({"temporal_compression": 2}, "temporal_compression"),
        ({"base_channels": 12}, "multiple of 8"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TokenizerConfig(**kwargs)


def test_clip_length_must_fit_grouping():
    tok = VideoTokenizer(TokenizerConfig(temporal_compression=4, base_channels=8))
    with pytest.raises(ValueError, match=r"1 \+ k\*4 frames \(e.g. 5 or 9\)"):
        tok.encode(torch.zeros(1, 6, 3, 96, 96))


def test_group_frames_layout():
    x = torch.arange(9).view(1, 9)
    assert group_frames(x, 4).tolist() == [[[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8]]]
    assert group_frames(x[:, :3], 1).tolist() == [[[0], [1], [2]]]


def test_temporal_grouping_is_causal():
    """Latent frame j sees frames <= 4j only; decoded frames of group j see latent frame j only."""
    torch.manual_seed(0)
    tok = VideoTokenizer(TokenizerConfig(temporal_compression=4, base_channels=8)).eval()
    frames = torch.rand(1, 9, 3, 96, 96) * 2 - 1
    perturbed = frames.clone()
    perturbed[:, 5:] = torch.rand_like(perturbed[:, 5:])  # the last group only
    with torch.no_grad():
        a, b = tok.encode(frames).mean, tok.encode(perturbed).mean
        assert torch.equal(a[:, :2], b[:, :2])
        assert not torch.equal(a[:, 2], b[:, 2])
        perturbed_latents = a.clone()
        perturbed_latents[:, 2] += 1.0
        da, db = tok.decode(a), tok.decode(perturbed_latents)
    assert torch.equal(da[:, :5], db[:, :5])
    assert not torch.equal(da[:, 5:], db[:, 5:])
