"""Items the service can recommend, held in memory with dense indexes so every
strategy scores the whole catalogue as one numpy vector."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Item:
    item_id: str
    title: str = ""
    # Category path, outermost first, separated by ">" ("fashion>shoes>running").
    category: str = ""
    tags: tuple[str, ...] = ()
    price: float = 0.0
    brand: str = ""
    available: bool = True
    attributes: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    # When the item was first listed (epoch seconds), for "new arrival".
    listed_at: float = 0.0

    @property
    def top_category(self) -> str:
        return self.category.split(">", 1)[0].strip()

    def text(self) -> str:
        """What content similarity reads: title, category words, tags, brand,
        attributes and description (Korean or English)."""
        parts = [
            self.title,
            self.category.replace(">", " "),
            " ".join(self.tags),
            self.brand,
            " ".join(f"{k} {v}" for k, v in sorted(self.attributes.items())),
            self.description,
        ]
        return " ".join(p for p in parts if p)


class Catalog:
    """Item id <-> dense index. Ids seen only in interactions get an index too
    (an item may be sold before the catalogue feed names it)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.items: list[Item | None] = []
        self._available: B = np.ones(0, dtype=np.bool_)
        self._price: F64 = np.zeros(0)
        self._category: I64 = np.zeros(0, dtype=np.int64)
        self._listed: F64 = np.zeros(0)
        self._described: B = np.zeros(0, dtype=np.bool_)
        self.category_codes: dict[str, int] = {"": 0}
        self.version = 0  # bumped on every change, for caches

    def __len__(self) -> int:
        return len(self.ids)

    def _grow(self, n: int) -> None:
        cap = len(self._available)
        if n <= cap:
            return
        new = max(n, cap * 2, 64)
        self._available = np.concatenate([self._available, np.ones(new - cap, dtype=np.bool_)])
        self._price = np.concatenate([self._price, np.zeros(new - cap)])
        self._category = np.concatenate([self._category, np.zeros(new - cap, dtype=np.int64)])
        self._listed = np.concatenate([self._listed, np.zeros(new - cap)])
        self._described = np.concatenate([self._described, np.zeros(new - cap, dtype=np.bool_)])

    def ensure(self, item_id: str) -> int:
        i = self.index.get(item_id)
        if i is not None:
            return i
        i = len(self.ids)
        self._grow(i + 1)
        self.ids.append(item_id)
        self.items.append(None)
        self.index[item_id] = i
        self.version += 1
        return i

    def upsert(self, item: Item) -> int:
        i = self.ensure(item.item_id)
        self.items[i] = item
        self._available[i] = item.available
        self._price[i] = item.price
        self._listed[i] = item.listed_at
        self._described[i] = True
        top = item.top_category
        self._category[i] = self.category_codes.setdefault(top, len(self.category_codes))
        self.version += 1
        return i

    def set_available(self, item_id: str, available: bool) -> bool:
        i = self.index.get(item_id)
        if i is None:
            return False
        self._available[i] = available
        it = self.items[i]
        if it is not None:
            from dataclasses import replace

            self.items[i] = replace(it, available=available)
        self.version += 1
        return True

    def get(self, item_id: str) -> Item | None:
        i = self.index.get(item_id)
        return None if i is None else self.items[i]

    @property
    def available(self) -> B:
        return self._available[: len(self.ids)]

    @property
    def price(self) -> F64:
        return self._price[: len(self.ids)]

    @property
    def category(self) -> I64:
        return self._category[: len(self.ids)]

    @property
    def listed_at(self) -> F64:
        return self._listed[: len(self.ids)]

    def described(self) -> B:
        """True for items the catalogue feed described (not only seen in events)."""
        return self._described[: len(self.ids)]
