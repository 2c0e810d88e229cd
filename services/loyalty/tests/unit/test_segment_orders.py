"""How Segment `Order Completed` / `Order Refunded` properties become lines."""

from __future__ import annotations

import pytest

from cxloop_libs.errors import InvalidArgument
from loyalty.entrypoints.consumers import _lines, _order_id


def test_products_become_lines_in_minor_units() -> None:
    props = {
        "order_id": "o-1",
        "products": [
            {
                "product_id": "p1",
                "category": "shoes",
                "brand": "nike",
                "price": 12.5,
                "quantity": 2,
            },
            {"sku": "s2", "price": 3},
        ],
    }
    lines = _lines(props, "USD")
    assert [(li.sku, li.category, li.brand, li.quantity, li.unit_price) for li in lines] == [
        ("p1", "shoes", "nike", 2, 1250),
        ("s2", "", "", 1, 300),
    ]
    assert _lines({"total": 35000.0}, "KRW")[0].amount == 35000
    assert _lines({"revenue": 10}, "KRW")[0].amount == 10
    assert _order_id({"order_id": 123.0}) == "123"


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"products": [{"price": -1}]}, "properties.products[0].price"),
        ({"products": [{"price": 1, "quantity": 0}]}, "properties.products[0].quantity"),
        ({"products": [{"price": 1, "quantity": 1.5}]}, "properties.products[0].quantity"),
        ({"products": "many"}, "properties.products"),
        ({}, "properties.total"),
        ({"total": "lots"}, "properties.total"),
        ({"total": 1.5}, "properties.total"),  # KRW has no minor unit
    ],
)
def test_bad_order_properties_name_the_field(props: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        _lines(props, "KRW")
    assert err.value.field == field


def test_order_id_is_required() -> None:
    with pytest.raises(InvalidArgument) as err:
        _order_id({"total": 1})
    assert err.value.field == "properties.order_id"
