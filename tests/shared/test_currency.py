import pytest

from sources.shared.currency import WITHDRAWN, currency_table, current_codes, is_iso_4217, iso_4217, name_key, resolve
from sources.shared.values import ValueProblem

TABLE = currency_table(
    [
        ("Euro", "€", "EUR"),
        ("U.S. dollar", "$", "USD"),
        ("Mexican peso", "$", "MXN"),
        ("Cape Verdean escudo", "Esc", "CVE"),
        ("Croatian kuna", "kn", "HRK"),
        ("Norwegian krone", "kr", "NOK"),
        ("Estonian kroon", "KR", "EEK"),
    ]
)


@pytest.mark.parametrize(("value", "code"), [("EUR", "EUR"), ("eur", "EUR"), (" usd ", "USD"), ("HRK", "HRK")])
def test_iso_codes_pass_upper_cased(value, code):
    assert iso_4217(value) == code


@pytest.mark.parametrize("value", ["ESC", "LEI", "XYZ", "US", "EURO", "€", "", None, 978])
def test_anything_that_is_not_an_iso_4217_code_is_refused_naming_the_value(value):
    with pytest.raises(ValueProblem, match="currency: "):
        iso_4217(value)
    with pytest.raises(ValueProblem, match="missing" if value in ("", None) else repr(value).replace("$", r"\$")):
        iso_4217(value)


def test_the_field_name_is_in_the_message():
    with pytest.raises(ValueProblem, match=r"^currencyCode: 'ABC' is not a code of the ISO 4217 list$"):
        iso_4217("ABC", field="currencyCode")


def test_the_list_is_pycountrys_and_withdrawn_codes_are_only_those_no_longer_in_it():
    codes = current_codes()
    assert {"EUR", "USD", "GBP", "JPY", "CVE", "RON"} <= codes
    assert not set(WITHDRAWN) & codes
    assert all(is_iso_4217(code) for code in WITHDRAWN)
    assert not is_iso_4217("ESC")


def test_names_compare_without_case_spacing_or_full_stops_but_letters_stay():
    assert name_key("U.S. dollar") == name_key("US Dollar") == name_key("u.s.  DOLLAR")
    assert name_key("Polish złoty") != name_key("Polish zloty")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("Euro", "EUR"),
        ("us dollar", "USD"),
        ("MXN", "MXN"),
        ("gbp", "GBP"),
        ("€", "EUR"),
        ("Esc", "CVE"),
        ("kn", "HRK"),
    ],
)
def test_a_name_a_code_or_an_unambiguous_symbol_resolves(value, code):
    assert resolve(value, TABLE) == code


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("$", r"the symbol '\$' is written by several currencies \(USD, MXN\)"),
        ("kr", r"the symbol 'kr' is written by several currencies \(NOK, EEK\)"),
        ("KR", r"the symbol 'KR' is written by several currencies \(NOK, EEK\)"),
        ("ESC", "'ESC' is neither a known currency name, an ISO 4217 code nor a symbol"),
        ("Dollar", "'Dollar' is neither"),
        ("", "missing"),
        (None, "missing"),
        (12, "12 is not a currency name, code or symbol"),
    ],
)
def test_anything_else_is_refused_never_guessed(value, message):
    with pytest.raises(ValueProblem, match=message):
        resolve(value, TABLE, field="currency")


def test_a_table_with_a_false_code_or_a_name_given_twice_is_refused():
    with pytest.raises(ValueError, match="'ESC'"):
        currency_table([("Cape Verdean escudo", "Esc", "ESC")])
    with pytest.raises(ValueError, match="names both"):
        currency_table([("Dollar", "$", "USD"), ("dollar", "$", "CAD")])
