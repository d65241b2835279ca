"""The contracts of the MedFabric chaincode; the first answers function names without a contract prefix."""

from .access_log import AccessLogContract
from .anchor import AnchorContract
from .consent import ConsentContract
from .decoy import DecoyContract
from .emr_index import EmrIndexContract
from .fl import FlContract
from .market import MarketContract

ALL_CONTRACTS = [EmrIndexContract, ConsentContract, AccessLogContract, AnchorContract, FlContract, DecoyContract,
                 MarketContract]
