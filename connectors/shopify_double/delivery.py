"""The double's shipping zones, served read-only as Shopify's ``deliveryProfiles``.

The shop has one profile, the default "General profile", with one location group whose zones
are the shop's ``shippingZones`` (from the seed file, see :func:`zones_from_seed`) or, when
none were seeded, follow its ``shipsToCountries``: a "Domestic" zone with the shop's own
country and an "International" zone with the others. A zone country lists every province the
double accepts on addresses of that country (:func:`normalize.provinces`) unless the seed
names some; countries without provinces in Shopify list none. Ids are numbered in order, so
they stay the same while the shop's settings do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import normalize

PROFILE_GID = "gid://shopify/DeliveryProfile/"
LOCATION_GROUP_GID = "gid://shopify/DeliveryLocationGroup/"
ZONE_GID = "gid://shopify/DeliveryZone/"
COUNTRY_GID = "gid://shopify/DeliveryCountry/"
PROVINCE_GID = "gid://shopify/DeliveryProvince/"


class ZoneProblem(ValueError):
    """A seeded shipping zone Shopify would not accept; ``where`` is a JSON pointer."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def zones_from_seed(value: Any, where: str = "/shop/shipping_zones") -> list[dict[str, Any]]:
    """Seeded zones in the stored form ``[{name, countries: [{code, provinces}]}]``
    (``provinces: None`` = all of them). Accepted per country: ``NL``, ``{code: NL}`` or
    ``{code: US, provinces: [CA, New York]}`` (codes or names). Raises :class:`ZoneProblem`
    for an unknown country or province, provinces of a country that has none, and a country
    in two zones (Shopify allows a country once per location group)."""
    if not isinstance(value, list):
        raise ZoneProblem(where, "expected a list of zones")
    zones: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(value):
        at = f"{where}/{i}"
        if not isinstance(item, Mapping) or not isinstance(item.get("countries"), list):
            raise ZoneProblem(at, "expected a mapping with name and countries (a list)")
        unknown = set(item) - {"name", "countries"}
        if unknown:
            raise ZoneProblem(f"{at}/{sorted(unknown)[0]}", "unknown field (known: name, "
                              "countries)")
        name = str(item.get("name") or f"Zone {i + 1}")
        countries = []
        for j, entry in enumerate(item["countries"]):
            country = _zone_country(entry, f"{at}/countries/{j}")
            if country["code"] in seen:
                raise ZoneProblem(f"{at}/countries/{j}", f"{country['code']} is already in "
                                  f"zone {seen[country['code']]!r}")
            seen[country["code"]] = name
            countries.append(country)
        zones.append({"name": name, "countries": countries})
    return zones


def _zone_country(entry: Any, where: str) -> dict[str, Any]:
    data = {"code": entry} if isinstance(entry, str | bool) else entry
    text = data.get("code") if isinstance(data, Mapping) else None
    if not isinstance(text, str):
        raise ZoneProblem(where, "expected a country code or a mapping with code (and "
                          "provinces)")
    unknown = set(data) - {"code", "provinces"}
    if unknown:
        raise ZoneProblem(f"{where}/{sorted(unknown)[0]}", "unknown field (known: code, "
                          "provinces)")
    found = normalize.country(text)
    if found is None or len(text.strip()) != 2:
        raise ZoneProblem(f"{where}/code", f"{text!r} is not a country code Shopify knows")
    code = found[0]
    wanted = data.get("provinces")
    if wanted is None:
        return {"code": code, "provinces": None}
    if not isinstance(wanted, list):
        raise ZoneProblem(f"{where}/provinces", "expected a list of province codes or names")
    if not normalize.provinces(code):
        raise ZoneProblem(f"{where}/provinces", f"{code} has no provinces in Shopify")
    codes: list[str] = []
    for k, text in enumerate(wanted):
        province = normalize.province(code, str(text))
        if isinstance(text, bool) or not isinstance(province, tuple):
            raise ZoneProblem(f"{where}/provinces/{k}", f"{text!r} is not a province of {code}")
        if province[0] not in codes:
            codes.append(province[0])
    return {"code": code, "provinces": codes}


def shop_zones(shop: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The shop's zones in the stored form: seeded, or made from ``shipsToCountries``."""
    seeded = shop.get("shippingZones")
    if seeded is not None:
        return list(seeded)
    home = str(shop.get("countryCode") or "").upper()
    ships = [str(code).upper() for code in shop.get("shipsToCountries") or ()]
    zones = []
    if home in ships:
        zones.append({"name": "Domestic", "countries": [{"code": home, "provinces": None}]})
    abroad = [{"code": code, "provinces": None} for code in ships if code != home]
    if abroad:
        zones.append({"name": "International", "countries": abroad})
    return zones


def profiles(shop: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The shop's delivery profiles as the API's objects (the double's one default profile).

    The location group keeps its zones under ``zones`` for the ``locationGroupZones``
    connection; each zone entry has the zone's id, which the connection's cursors use."""
    numbers = {"zone": 0, "country": 0, "province": 0}

    def next_gid(kind: str, prefix: str) -> str:
        numbers[kind] += 1
        return f"{prefix}{numbers[kind]}"

    entries = []
    for zone in shop_zones(shop):
        zone_gid = next_gid("zone", ZONE_GID)
        countries = [_country(country, next_gid) for country in zone["countries"]]
        entries.append({"id": zone_gid,
                        "zone": {"id": zone_gid, "name": zone["name"], "countries": countries}})
    group = {"locationGroupId": f"{LOCATION_GROUP_GID}1", "zones": entries}
    return [{"id": f"{PROFILE_GID}1", "name": "General profile", "default": True,
             "profileLocationGroups": [group]}]


def _country(
    country: Mapping[str, Any], next_gid: Callable[[str, str], str]
) -> dict[str, Any]:
    code = str(country["code"])
    found = normalize.country(code)
    name = found[1] if found else code
    every = normalize.provinces(code)
    wanted: Sequence[str] | None = country.get("provinces")
    chosen = every if wanted is None else [p for p in every if p[0] in set(wanted)]
    provinces = [{"id": next_gid("province", PROVINCE_GID), "code": province_code,
                  "name": province_name, "translatedName": province_name}
                 for province_code, province_name in chosen]
    return {"id": next_gid("country", COUNTRY_GID), "name": name, "translatedName": name,
            "code": {"countryCode": code, "restOfWorld": False}, "provinces": provinces}


def find(shop: Mapping[str, Any], gid: str) -> dict[str, Any] | None:
    """A profile, zone, zone country or zone province by its gid (for ``node``)."""
    for profile in profiles(shop):
        if profile["id"] == gid:
            return profile
        for group in profile["profileLocationGroups"]:
            for entry in group["zones"]:
                zone = entry["zone"]
                if zone["id"] == gid:
                    return zone
                for country in zone["countries"]:
                    if country["id"] == gid:
                        return country
                    for province in country["provinces"]:
                        if province["id"] == gid:
                            return province
    return None
