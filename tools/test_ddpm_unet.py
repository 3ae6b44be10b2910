import unittest

import torch

import ddpm_unet


class TestDDPMUNet(unittest.TestCase):
    def test_size_and_shape(self):
        m = ddpm_unet.cifar10_unet()
        n = sum(p.numel() for p in m.parameters())
        # Ho et al. report 35.7M parameters for the CIFAR-10 model.
        self.assertAlmostEqual(n / 1e6, 35.7, delta=0.1)
        with torch.no_grad():
            y = m(torch.randn(2, 3, 32, 32), torch.tensor([1, 999]))
        self.assertEqual(tuple(y.shape), (2, 3, 32, 32))
        self.assertTrue(torch.isfinite(y).all())


if __name__ == "__main__":
    unittest.main()
