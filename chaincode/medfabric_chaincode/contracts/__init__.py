"""The contracts of the MedFabric chaincode; the first answers function names without a contract prefix."""

from .emr_index import EmrIndexContract

ALL_CONTRACTS = [EmrIndexContract]
