"""MedFabric's chaincode: the contracts (medfabric_chaincode.contracts) on our own runtime (.runtime)."""

__version__ = "0.1.0"
