"""Seeded Flow Payroll billing data: an organisation, its clients and their payroll invoices.

Records are kept with Python values (`Decimal`, `date`, `datetime`); the app renders dates in
the formats it announces. Invoices cover every state the API can show: paid, part-paid, open,
credited (with `appliedCredits`), voided and draft, in GBP and EUR, each with several payroll
lines carrying VAT.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sandbox import framework

VAT = {"OUTPUT2": Decimal("0.20"), "RROUTPUT": Decimal("0.05"), "ZERORATEDOUTPUT": Decimal(0)}

_COMPANIES = [
    "Harbour Lane Logistics", "Pennine Care Homes", "Brightwell Engineering", "Kestrel Security",
    "Oakridge Hospitality", "Thamesgate Facilities", "Northern Quarter Studios", "Ashdown Recruitment",
    "Clyde Marine Services", "Liffey Software", "Corrib Health", "Severn Construction",
]  # fmt: skip
_FIRST = [
    "Amelia", "Oliver", "Isla", "George", "Ava", "Harry", "Mia", "Noah", "Grace", "Jack", "Freya", "Leo", "Aoife",
    "Conor", "Siobhan", "Niamh",
]  # fmt: skip
_LAST = [
    "Patel", "Jones", "Murphy", "Walsh", "Evans", "Hughes", "Khan", "Byrne", "Taylor", "Kelly", "Wright", "O'Brien",
]  # fmt: skip
# (pay element, quantity range, unit rate range, tax type): a payroll bureau's billable elements.
_PAY_ELEMENTS = [
    ("Basic Pay", (Decimal("7.5"), Decimal("45")), (Decimal("11.44"), Decimal("32.50")), "OUTPUT2"),
    ("Overtime 1.5x", (Decimal("1"), Decimal("12")), (Decimal("17.16"), Decimal("48.75")), "OUTPUT2"),
    ("Holiday Pay", (Decimal("7.5"), Decimal("22.5")), (Decimal("11.44"), Decimal("30.00")), "OUTPUT2"),
    ("Umbrella Margin", (Decimal("1"), Decimal("1")), (Decimal("18.00"), Decimal("25.00")), "OUTPUT2"),
    ("Training Course", (Decimal("1"), Decimal("3")), (Decimal("95.00"), Decimal("240.00")), "ZERORATEDOUTPUT"),
    ("Home Energy Allowance", (Decimal("1"), Decimal("1")), (Decimal("26.00"), Decimal("60.00")), "RROUTPUT"),
]  # fmt: skip
# The states an invoice is seeded in; the first len(KINDS) invoices take each one in turn.
KINDS = ("paid", "part_paid", "open", "credited", "voided", "draft")


def money(value: Decimal) -> Decimal:
    """Round to pence, half to even."""
    return framework.money(value, ROUND_HALF_EVEN)


def now_utc() -> dt.datetime:
    """Now, in UTC, to the millisecond (the precision of the announced timestamp format)."""
    now = framework.utc_now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Generator:
    """Builds the seeded organisation; `random.Random(seed)` makes it reproducible."""

    def __init__(self, seed: int, shift: dt.timedelta = dt.timedelta(0)) -> None:
        self.rng = random.Random(seed)
        self.sequence = 1000
        self.shift = shift  # added to every date generated (the draws do not depend on dates)

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def decimal(self, low: Decimal, high: Decimal, step: Decimal = framework.CENT) -> Decimal:
        steps = int((high - low) / step)
        return low + step * self.rng.randint(0, steps)

    def moment(self, start: dt.datetime, max_days: int) -> dt.datetime:
        seconds = self.rng.randint(0, max_days * 86400)
        return start + dt.timedelta(seconds=seconds, milliseconds=self.rng.randint(0, 999))

    def client(self, organisation_id: str, index: int) -> dict[str, Any]:
        irish = index % 3 == 1
        name = _COMPANIES[index % len(_COMPANIES)] + ("" if index < len(_COMPANIES) else f" {index}")
        created = self.moment(dt.datetime(2023, 1, 5, tzinfo=dt.UTC) + self.shift, 300)
        first, last = self.rng.choice(_FIRST), self.rng.choice(_LAST)
        domain = name.lower().replace(" ", "") + (".ie" if irish else ".co.uk")
        return {
            "typeDiscriminator": "Client", "id": self.uid(), "name": name, "organisationId": organisation_id,
            "createdDate": created, "createdBy": "bureau.admin@flowpayroll.example",
            "updatedDate": self.moment(created, 60), "updatedBy": "bureau.admin@flowpayroll.example",
            "invoiceFormatTagGroup": "Department", "invoiceFormatTagName": "Site", "invoiceNumberTagGroup": None,
            "invoiceNumberTagName": None, "subtotalTagGroupName": "Department",
            "rebatePercentage": Decimal(self.rng.choice(["0", "2.5", "5"])),
            "vatNumber": ("IE" + str(self.rng.randint(1000000, 9999999)) + "T")
            if irish
            else ("GB" + str(self.rng.randint(100000000, 999999999))),
            "registrationNumber": str(self.rng.randint(10000000, 99999999)),
            "contacts": [
                {
                    "firstName": "Accounts", "lastName": "Payable", "email": None, "id": self.uid(),
                    "phone": "+44 20 7946 0" + str(self.rng.randint(100, 999)), "role": "Switchboard", "tags": [],
                    "includeInEmails": False,
                },
                {
                    "firstName": first, "lastName": last, "email": f"{first.lower()}.{last.lower()}@{domain}",
                    "id": self.uid(), "phone": None, "role": "Finance", "tags": [], "includeInEmails": True,
                },
            ],
            "tags": [{"name": "Region", "group": "Sales", "value": "Ireland" if irish else "UK"}],
            "defaultRevenueAccountCode": "200", "defaultTaxType": "OUTPUT2", "providerId": None,
            "externalProvider": "Xero", "lastSyncedAt": self.moment(created, 90), "syncErrorMessage": None,
            "billingAddress": {
                "line1": f"{self.rng.randint(1, 200)} Market Street", "line2": None,
                "city": "Dublin" if irish else self.rng.choice(["Leeds", "Bristol", "Manchester"]), "county": None,
                "postcode": "D02 X285" if irish else "LS1 4DY", "countryCode": "IE" if irish else "GB",
            },
            "physicalAddress": None, "_currency": "EUR" if irish else "GBP",
        }  # fmt: skip

    def line(self, invoice: dict[str, Any], issued: dt.date) -> dict[str, Any]:
        element, (q_low, q_high), (r_low, r_high), tax_type = self.rng.choice(_PAY_ELEMENTS)
        quantity = self.decimal(q_low, q_high, Decimal("0.5"))
        rate = self.decimal(r_low, r_high)
        line_amount = money(quantity * rate)
        employee = f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"
        return {
            "id": self.uid(), "invoiceId": invoice["id"], "organisationId": invoice["organisationId"],
            "clientId": invoice["clientId"], "employeeId": self.uid(), "employeeName": employee,
            "description": f"{element} - {employee}", "amount": line_amount, "payElementId": self.uid(),
            "units": quantity, "chargeRate": rate, "chargeUnits": quantity, "chargeValue": line_amount,
            "date": issued - dt.timedelta(days=self.rng.randint(1, 7)),
            "tags": [{"name": "Site", "group": "Department", "value": self.rng.choice(["North", "South"])}],
            "createdDate": invoice["createdDate"], "createdBy": "payroll.run@flowpayroll.example", "attachments": [],
            "payElementDescription": element, "accountCode": "200", "taxType": tax_type, "quantity": quantity,
            "unitAmount": rate, "lineAmount": line_amount, "taxAmount": money(line_amount * VAT[tax_type]),
            "poNumber": self.rng.choice([None, f"PO-{self.rng.randint(10000, 99999)}"]),
        }  # fmt: skip

    def invoice(self, client: dict[str, Any], kind: str) -> dict[str, Any]:
        self.sequence += 1
        issued = dt.date(2024, 1, 1) + self.shift + dt.timedelta(days=self.rng.randint(0, 540))
        created = dt.datetime.combine(issued, dt.time(self.rng.randint(7, 18)), dt.UTC)
        created += dt.timedelta(milliseconds=self.rng.randint(0, 3_599_999))
        invoice: dict[str, Any] = {
            "id": self.uid(), "organisationId": client["organisationId"], "clientId": client["id"],
            "lineAmountTypes": "Exclusive", "currencyCode": client["_currency"], "appliedCredits": [],
            "groupingKey": f"payrun-{issued:%Y-%m}", "invoiceFormatTagGroup": client["invoiceFormatTagGroup"],
            "invoiceFormatTagName": client["invoiceFormatTagName"], "date": issued,
            "dueDate": issued + dt.timedelta(days=self.rng.choice([14, 30])),
            "invoiceNumber": f"INV-{self.sequence:05d}",
            "reference": f"Payroll week {issued.isocalendar().week:02d}/{issued.year}", "attachments": [],
            "lineItemAttachmentCount": 0, "linesWithoutAttachmentsCount": 0, "linesWithoutPoNumberCount": 0,
            "tags": [], "externalId": None, "externalProvider": None, "lastSyncedAt": None, "syncStatus": "NotSynced",
            "syncErrorMessage": None, "syncErrorCode": None, "externalProviderStatus": None,
            "emailSent": kind != "draft", "emailSentAt": created + dt.timedelta(hours=1) if kind != "draft" else None,
            "emailSentBy": "bureau.admin@flowpayroll.example" if kind != "draft" else None, "createdDate": created,
            "createdBy": "payroll.run@flowpayroll.example", "updatedDate": created,
            "updatedBy": "payroll.run@flowpayroll.example", "_paid": Decimal(0),
        }  # fmt: skip
        invoice["lineItems"] = [self.line(invoice, issued) for _ in range(self.rng.randint(2, 5))]
        invoice["linesWithoutPoNumberCount"] = sum(1 for li in invoice["lineItems"] if not li["poNumber"])
        if self.rng.random() < 0.4:
            invoice["attachments"].append({
                "id": self.uid(), "fileName": f"timesheets-{issued:%Y%m%d}.pdf", "url": None,
                "description": "Signed timesheets", "s3Key": f"attachments/{invoice['id']}/timesheets.pdf",
                "contentType": "application/pdf", "fileSize": self.rng.randint(40_000, 900_000),
                "uploadedDate": created, "uploadedBy": "payroll.run@flowpayroll.example",
            })  # fmt: skip
        recompute(invoice)
        total = invoice["amount"]
        if kind in ("paid", "part_paid", "credited", "voided", "draft") or self.rng.random() < 0.5:
            invoice.update(
                externalId=self.uid(), externalProvider="Xero", syncStatus="Synced",
                lastSyncedAt=created + dt.timedelta(minutes=5), externalProviderStatus="AUTHORISED",
            )  # fmt: skip
        if kind == "paid":
            invoice["_paid"] = total
        elif kind == "part_paid":
            invoice["_paid"] = money(total * Decimal(self.rng.randint(10, 90)) / 100)
        elif kind == "credited":
            credit = money(total * Decimal(self.rng.randint(5, 40)) / 100)
            applied = {"creditNoteId": self.uid(), "amountApplied": credit}
            invoice["appliedCredits"] = [
                {**applied, "appliedDate": issued + dt.timedelta(days=self.rng.randint(1, 20))}
            ]
        elif kind == "draft":
            invoice["externalProviderStatus"] = "DRAFT"
        recompute(invoice)
        if kind == "voided":
            void(invoice)
        invoice["updatedDate"] = self.moment(created, 20)
        return invoice


def last_day(value: Any, key: str = "") -> dt.date | None:
    """The last day a record (with what it holds) records something on: its moments and dates, not a due date."""
    if isinstance(value, dict):
        return max((d for k, v in value.items() if (d := last_day(v, k))), default=None)
    if isinstance(value, list):
        return max((d for v in value if (d := last_day(v, key))), default=None)
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) and key != "dueDate" else None


def recompute(invoice: dict[str, Any]) -> None:
    """Totals and balance from the lines, payments and credits, as the service keeps them."""
    lines = invoice["lineItems"]
    invoice["subTotal"] = sum((li["lineAmount"] for li in lines), Decimal("0.00"))
    invoice["totalTax"] = sum((li["taxAmount"] for li in lines), Decimal("0.00"))
    invoice["amount"] = invoice["subTotal"] + invoice["totalTax"]
    invoice["totalCreditAmount"] = sum((c["amountApplied"] for c in invoice["appliedCredits"]), Decimal("0.00"))
    group = {"label": "Payroll services", "amount": invoice["subTotal"], "taxAmount": invoice["totalTax"]}
    invoice["subtotalGroups"] = [{**group, "totalAmount": invoice["amount"], "sortOrder": 1}]
    if invoice.get("externalProviderStatus") == "VOIDED":
        invoice["balanceDue"] = Decimal("0.00")
        return
    invoice["balanceDue"] = max(Decimal("0.00"), invoice["amount"] - invoice["totalCreditAmount"] - invoice["_paid"])
    if invoice["balanceDue"] == 0 and invoice.get("externalProvider"):
        invoice["externalProviderStatus"] = "PAID"
    elif invoice.get("externalProviderStatus") == "PAID":
        invoice["externalProviderStatus"] = "AUTHORISED"


def void(invoice: dict[str, Any]) -> None:
    """What `POST …/void` does in this sandbox: the accounting status becomes `VOIDED` and nothing
    is owed any more; amounts and lines are kept."""
    invoice.update(externalProviderStatus="VOIDED", syncStatus="Synced")
    if not invoice.get("externalProvider"):
        invoice["externalProvider"] = "Xero"
    recompute(invoice)
