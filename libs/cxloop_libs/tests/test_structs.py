import math

from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct

from cxloop_libs.structs import struct_dict


def test_reads_a_struct_as_message_to_dict_does() -> None:
    s = Struct()
    s.update(
        {
            "sku": "A-1",
            "price": 12900,
            "gift": False,
            "none": None,
            "tags": ["x", 2, {"deep": [True, None]}],
            "nested": {"a": {"b": 1.5}},
        }
    )
    assert struct_dict(s) == MessageToDict(s)


def test_non_finite_numbers_stay_floats() -> None:
    s = Struct()
    s.update({"bad": float("nan"), "inf": float("inf")})
    out = struct_dict(s)
    assert math.isnan(out["bad"]) and out["inf"] == float("inf")
