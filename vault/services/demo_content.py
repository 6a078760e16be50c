"""The files of the demo company: customer dossiers (PDF), order histories (CSV), visit notes (Markdown),
call logs (text) and revenue charts (PNG), all generated from a seed.

Every file is a pure function of the seed and its customer, byte for byte (reportlab in invariant mode,
no clock read anywhere), so a second run recognises what is already there and a test can regenerate a
file and compare it with what the vault decrypts.
"""

from __future__ import annotations

import csv
import io
import random
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from vault.marking.fonts import font_for
from vault.rendering import fonts

SEED = 20240611
YEARS = (2021, 2022, 2023, 2024)

FIRST_NAMES = ("Anna", "Bruno", "Chiara", "Daniel", "Elif", "Femi", "Greta", "Hugo", "Ingrid", "Jonas", "Keiko",
               "Lars", "Marta", "Nikolai", "Olga", "Pedro", "Quentin", "Rosa", "Stefan", "Tereza", "Uma", "Viktor",
               "Wen", "Yara", "Zofia")
LAST_NAMES = ("Andersen", "Bianchi", "Castro", "Dubois", "Eriksen", "Fontaine", "García", "Horvat", "Ivanova",
              "Jensen", "Kaplan", "Lehmann", "Moreno", "Nakamura", "O'Brien", "Petrov", "Quist", "Rossi",
              "Schneider", "Tanaka", "Ulrich", "Varga", "Weber", "Yilmaz", "Zeller")
CONTACT_ROLES = ("Purchasing manager", "Chief financial officer", "Operations director", "Head of procurement",
                 "Managing director", "Facilities manager", "IT manager", "Quality lead")
STREETS = ("Harbour Road", "Industriestraße", "Calle Mayor", "Rue de la Paix", "Market Street", "Mill Lane",
           "Kungsgatan", "Via Roma", "Station Avenue", "Parkweg")
CITIES = ("Hamburg", "Rotterdam", "Lyon", "Gothenburg", "Bilbao", "Leeds", "Turin", "Brno", "Aarhus", "Graz")
PRODUCTS = (("Service contract, annual", 4800.0), ("Replacement parts kit", 310.0), ("Installation, per day", 950.0),
            ("Training session", 620.0), ("Sensor module S2", 145.0), ("Control unit C7", 1890.0),
            ("Maintenance visit", 420.0), ("Software licence, seat", 240.0))
PAYMENT_TERMS = ("30 days net", "45 days net", "60 days net", "2% 10 days, 30 days net")
TOPICS = ("renewal of the service contract", "delays on the last two deliveries", "a volume discount for next year",
          "the new control unit", "training for their new operators", "an invoice dispute from March",
          "expanding to their second site", "quality issues on the sensor batch")


# Chinese and Russian customers: contacts, streets and cities of their own country (the customers above
# keep theirs, so their files are unchanged).
LOCAL: dict[str, dict[str, tuple[str, ...]]] = {
    "zh": {"first": ("伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "涛"),
           "last": ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴", "徐", "孙"),
           "streets": ("南京西路", "深南大道", "长安街", "中山路", "人民路", "解放路"),
           "cities": ("上海", "深圳", "北京", "广州", "杭州", "苏州"),
           "roles": ("采购经理", "财务总监", "运营总监", "总经理", "设备经理", "质量主管")},
    "ru": {"first": ("Алексей", "Мария", "Сергей", "Елена", "Дмитрий", "Ольга", "Андрей", "Наталья", "Игорь"),
           "last": ("Иванов", "Смирнова", "Кузнецов", "Попова", "Васильев", "Петрова", "Соколов", "Морозова"),
           "streets": ("ул. Ленина", "Невский проспект", "ул. Мира", "пр. Победы", "ул. Гагарина"),
           "cities": ("Москва", "Санкт-Петербург", "Екатеринбург", "Новосибирск", "Казань"),
           "roles": ("Менеджер по закупкам", "Финансовый директор", "Операционный директор",
                     "Генеральный директор", "Главный инженер")},
}


@dataclass(frozen=True)
class DemoCustomer:
    name: str
    segment: str
    index: int
    country: str = ""  # "zh", "ru": contacts and addresses of that country (LOCAL)
    owner: str = ""  # the account manager, when not the one chosen in turn


_FIRST_THIRTY: tuple[DemoCustomer, ...] = tuple(
    DemoCustomer(name, segment, i) for i, (name, segment) in enumerate((
        ("Nordlicht Logistik GmbH", "vip"), ("Harbor & Pine Outfitters", "ordinary"),
        ("Castellano Foods S.L.", "key"), ("Meridian Dental Group", "key"), ("Blue Fjord Seafood AS", "vip"),
        ("Atlas Precision Tools", "key"), ("Greenfield Agritech", "ordinary"),
        ("Kowalczyk Budownictwo Sp. z o.o.", "ordinary"), ("Lumen Optics Ltd", "key"),
        ("Sable Ridge Hotels", "vip"), ("Ostrava Steelworks a.s.", "key"), ("Willow Creek Veterinary", "ordinary"),
        ("Riverside Print Co.", "ordinary"), ("Helvetia Medtech AG", "vip"), ("Tanaka Electronics K.K.", "key"),
        ("Café Aurora", "ordinary"), ("Brightwater Utilities", "key"), ("Müller & Söhne Maschinenbau", "key"),
        ("Pinecrest Schools Trust", "ordinary"), ("Solaris Energy Partners", "vip"),
        ("Granite Peak Construction", "ordinary"), ("Delacroix Parfums SA", "key"),
        ("Oakhurst Family Pharmacy", "ordinary"), ("Northwind Traders", "ordinary"),
        ("Vega Aerospace Components", "key"), ("Lindqvist Design Studio", "ordinary"),
        ("Coastal Freight Lines", "key"), ("Ibérica Textiles", "ordinary"), ("Summit Health Clinics", "key"),
        ("Aurelia Private Bank", "vip"),
    ))
)
CUSTOMERS: tuple[DemoCustomer, ...] = (
    *_FIRST_THIRTY,
    DemoCustomer("上海明珠贸易有限公司", "vip", 30, "zh", "wei"),
    DemoCustomer("ООО «Северный ветер»", "vip", 31, "ru", "dmitry"),
    DemoCustomer("深圳前海智能制造有限公司", "key", 32, "zh", "wei"),
    DemoCustomer("АО «Уральские станки»", "key", 33, "ru", "dmitry"),
    DemoCustomer("杭州西湖茶业有限公司", "ordinary", 34, "zh", "wei"),
    DemoCustomer("ИП Кузнецова Анна Викторовна", "ordinary", 35, "ru", "dmitry"),
)


@dataclass(frozen=True)
class Profile:
    """Facts about one customer that all its files agree on."""

    customer: DemoCustomer
    seed: int
    street: str
    city: str
    since: int
    contacts: tuple[tuple[str, str, str, str], ...]  # name, role, phone, e-mail
    payment_terms: str
    discount: int
    credit_limit: int
    revenue: tuple[int, ...]  # per year of YEARS


def _rng(*parts: object) -> random.Random:
    """A generator seeded from `parts`: demo data must be reproducible, not secret."""
    return random.Random(":".join(map(str, parts)))  # noqa: S311


def _ascii(text: str) -> str:
    """`text` in lower-case ASCII letters and digits (and dots), accents taken off rather than letters dropped,
    as people spell their e-mail addresses: García → garcia, Müller → muller."""
    plain = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in plain if ch.isascii() and (ch.isalnum() or ch == "."))


def profile(customer: DemoCustomer, seed: int = SEED) -> Profile:
    if customer.country:
        return _local_profile(customer, seed)
    rng = _rng(seed, customer.name)
    domain = _ascii(customer.name.split()[0]).replace(".", "") + ".example"
    contacts = []
    for _ in range(3):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        mail_name = _ascii(f"{first}.{last}")
        contacts.append((f"{first} {last}", rng.choice(CONTACT_ROLES),
                         f"+{rng.randint(30, 49)} {rng.randint(100, 999)} {rng.randint(100000, 999999)}",
                         f"{mail_name}@{domain}"))
    scale = {"vip": 900_000, "key": 300_000, "ordinary": 60_000}[customer.segment]
    base = rng.randint(scale // 2, scale)
    revenue = [base]
    for _ in YEARS[1:]:
        revenue.append(int(revenue[-1] * (1 + rng.uniform(-0.12, 0.22))))
    return Profile(
        customer=customer, seed=seed, street=f"{rng.randint(1, 180)} {rng.choice(STREETS)}", city=rng.choice(CITIES),
        since=rng.randint(2004, 2019), contacts=tuple(contacts), payment_terms=rng.choice(PAYMENT_TERMS),
        discount=rng.choice((0, 3, 5, 8, 10, 12)), credit_limit=int(round(base / 4, -3)), revenue=tuple(revenue),
    )


def _local_profile(customer: DemoCustomer, seed: int) -> Profile:
    """A Chinese or Russian customer: names, roles and addresses of its country, ASCII e-mail addresses."""
    rng = _rng(seed, customer.name)
    words = LOCAL[customer.country]
    domain = f"customer{customer.index}.example"
    contacts = []
    for n in range(3):
        first, last = rng.choice(words["first"]), rng.choice(words["last"])
        name = f"{last}{first}" if customer.country == "zh" else f"{first} {last}"
        phone = f"+86 {rng.randint(130, 189)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}" \
            if customer.country == "zh" else f"+7 {rng.randint(900, 999)} {rng.randint(100, 999)}-{rng.randint(10, 99)}"
        contacts.append((name, rng.choice(words["roles"]), phone, f"contact{n + 1}@{domain}"))
    scale = {"vip": 900_000, "key": 300_000, "ordinary": 60_000}[customer.segment]
    base = rng.randint(scale // 2, scale)
    revenue = [base]
    for _ in YEARS[1:]:
        revenue.append(int(revenue[-1] * (1 + rng.uniform(-0.12, 0.22))))
    return Profile(
        customer=customer, seed=seed, street=f"{rng.choice(words['streets'])} {rng.randint(1, 180)}",
        city=rng.choice(words["cities"]), since=rng.randint(2004, 2019), contacts=tuple(contacts),
        payment_terms=rng.choice(PAYMENT_TERMS), discount=rng.choice((0, 3, 5, 8, 10, 12)),
        credit_limit=int(round(base / 4, -3)), revenue=tuple(revenue),
    )


def _money(value: float) -> str:
    return f"EUR {value:,.0f}"


# -- PDF: the customer dossier -------------------------------------------------------------------------


def dossier_pdf(p: Profile) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    rng = _rng(p.seed, p.customer.name, "history")
    fonts.register_fonts()  # Latin, Cyrillic and CJK names, embedded (Helvetica draws them as boxes)
    base = getSampleStyleSheet()
    styles = {name: base[name].clone(f"demo-{name}", fontName=fonts.SANS if name == "Normal" else f"{fonts.SANS}-Bold")
              for name in ("Title", "Normal", "Heading2")}
    out = io.BytesIO()
    # invariant: no creation date and a content-derived document id, so the bytes depend on the input only.
    doc = SimpleDocTemplate(out, pagesize=A4, title=f"Customer dossier: {p.customer.name}", author="Vault demo",
                            invariant=True, leftMargin=2 * cm, rightMargin=2 * cm, initialFontName=fonts.SANS)
    grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                       ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e7ebf2")),
                       ("FONTSIZE", (0, 0), (-1, -1), 9), ("FONTNAME", (0, 0), (-1, -1), fonts.SANS)])
    story = [
        Paragraph(f"Customer dossier — {_escape(p.customer.name)}", styles["Title"]),
        Paragraph(f"Segment: {p.customer.segment.upper()} · Customer since {p.since} · "
                  f"{_escape(p.street)}, {_escape(p.city)}", styles["Normal"]),
        Spacer(1, 12),
        Paragraph("Contacts", styles["Heading2"]),
        Table([["Name", "Role", "Phone", "E-mail"],
               *[[Paragraph(_escape(cell), styles["Normal"]) for cell in c] for c in p.contacts]], style=grid),
        Spacer(1, 12),
        Paragraph("Commercial terms", styles["Heading2"]),
        Table([["Term", "Agreed"],
               ["Payment", p.payment_terms],
               ["Standing discount", f"{p.discount} %"],
               ["Credit limit", _money(p.credit_limit)],
               ["Contract renewal", f"{YEARS[-1] + 1}-{rng.randint(1, 12):02d}-01"],
               ["Price list", f"PL-{YEARS[-1]}-{rng.randint(1, 9)}"]], style=grid),
        Spacer(1, 12),
        Paragraph("Revenue history", styles["Heading2"]),
        Table([["Year", "Revenue", "Change"],
               *[[str(year), _money(value),
                  "—" if i == 0 else f"{(value - p.revenue[i - 1]) / p.revenue[i - 1] * 100:+.1f} %"]
                 for i, (year, value) in enumerate(zip(YEARS, p.revenue, strict=True))]], style=grid),
        Spacer(1, 12),
        Paragraph("Relationship history", styles["Heading2"]),
    ]
    for year in YEARS:
        event = rng.choice(TOPICS)
        who = rng.choice(p.contacts)[0]
        story.append(Paragraph(f"<b>{year}</b>: meeting with {_escape(who)} about {event}.", styles["Normal"]))
    doc.build(story)
    return out.getvalue()


def _escape(text: str) -> str:
    """Escaped for a Paragraph, each run set in a font that has its glyphs."""
    return fonts.markup(text)


# -- CSV, Markdown, text ------------------------------------------------------------------------------


def orders_csv(p: Profile) -> bytes:
    rng = _rng(p.seed, p.customer.name, "orders")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", "order", "product", "quantity", "unit_price_eur", "total_eur"])
    day = date(YEARS[0], 1, 4)
    number = rng.randint(10_000, 60_000)
    while day.year <= YEARS[-1]:
        product, price = rng.choice(PRODUCTS)
        quantity = rng.randint(1, 40 if price < 500 else 4)
        writer.writerow([day.isoformat(), f"SO-{number}", product, quantity, f"{price:.2f}",
                         f"{price * quantity * (100 - p.discount) / 100:.2f}"])
        day += timedelta(days=rng.randint(9, 40))
        number += rng.randint(1, 300)
    return out.getvalue().encode("utf-8")


def visit_notes_md(p: Profile) -> bytes:
    rng = _rng(p.seed, p.customer.name, "visits")
    lines = [f"# Visit notes — {p.customer.name}", "", f"{p.street}, {p.city}. Customer since {p.since}.", ""]
    for year in YEARS[-2:]:
        for month in sorted(rng.sample(range(1, 13), 2)):
            contact = rng.choice(p.contacts)
            lines += [f"## {year}-{month:02d}-{rng.randint(1, 28):02d} — with {contact[0]} ({contact[1]})", "",
                      f"- Discussed {rng.choice(TOPICS)}.",
                      f"- They expect {rng.choice(('flat', 'growing', 'slightly lower'))} volumes next quarter.",
                      f"- Follow-up: send {rng.choice(('a quotation', 'the new price list', 'the service report'))}"
                      f" by {rng.choice(('Friday', 'end of month', 'next week'))}.", ""]
    return "\n".join(lines).encode("utf-8")


def call_log_txt(p: Profile) -> bytes:
    rng = _rng(p.seed, p.customer.name, "calls")
    lines = [f"Call log: {p.customer.name}", "=" * 40]
    day = date(YEARS[-1], 1, 2)
    for _ in range(rng.randint(12, 24)):
        day += timedelta(days=rng.randint(3, 20))
        contact = rng.choice(p.contacts)
        lines.append(f"{day.isoformat()}  {rng.randint(8, 17):02d}:{rng.choice((0, 15, 30, 45)):02d}  "
                     f"{contact[0]:<22} {rng.choice(('inbound', 'outbound'))}  {rng.choice(TOPICS)}")
    return ("\n".join(lines) + "\n").encode("utf-8")


# -- PNG: the revenue chart ---------------------------------------------------------------------------


def revenue_png(p: Profile) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    width, height, margin = 640, 360, 48
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    title = f"Revenue per year: {p.customer.name}"
    draw.text((margin, 14), title, fill=(29, 36, 48), font=font_for(title, 13) if not title.isascii() else font)
    top = max(p.revenue)
    bar = (width - 2 * margin) // len(YEARS)
    base_y = height - margin
    draw.line((margin, base_y, width - margin, base_y), fill=(91, 101, 117), width=2)
    for i, (year, value) in enumerate(zip(YEARS, p.revenue, strict=True)):
        x0 = margin + i * bar + bar // 6
        y0 = base_y - int((height - 2 * margin - 20) * value / top)
        draw.rectangle((x0, y0, x0 + bar * 2 // 3, base_y), fill=(31, 78, 140))
        draw.text((x0, base_y + 8), str(year), fill=(29, 36, 48), font=font)
        draw.text((x0, y0 - 14), f"{value / 1000:,.0f}k", fill=(29, 36, 48), font=font)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


@dataclass(frozen=True)
class DemoFile:
    customer: DemoCustomer
    title: str
    filename: str
    grade: int
    kind: str  # dossier | orders | visits | calls | chart

    def render(self, seed: int = SEED) -> bytes:
        p = profile(self.customer, seed)
        return _RENDERERS[self.kind](p)


_RENDERERS = {"dossier": dossier_pdf, "orders": orders_csv, "visits": visit_notes_md, "calls": call_log_txt,
              "chart": revenue_png}
_SECOND = (("orders", "Order history {y0}–{y1}", "orders-{y0}-{y1}.csv"),
           ("chart", "Revenue chart {y0}–{y1}", "revenue-{y0}-{y1}.png"),
           ("visits", "Visit notes {y1}", "visit-notes-{y1}.md"),
           ("calls", "Call log {y1}", "call-log-{y1}.txt"),
           ("chart", "Revenue overview", "revenue-overview.png"))
_DOSSIER_GRADE = {"vip": 3, "key": 2, "ordinary": 1}


def files(seed: int = SEED) -> list[DemoFile]:
    """Two files per customer: the dossier (graded by segment) and one of the other kinds in turn."""
    rng = _rng(seed)
    out: list[DemoFile] = []
    y0, y1 = YEARS[0], YEARS[-1]
    for customer in CUSTOMERS:
        words = ("".join(ch for ch in word if ch.isalnum()) for word in customer.name.lower().split())
        slug = "-".join(word for word in words if word)
        out.append(DemoFile(customer, "Customer dossier", f"dossier-{slug[:60]}.pdf",
                            _DOSSIER_GRADE[customer.segment], "dossier"))
        kind, title, name = _SECOND[customer.index % len(_SECOND)]
        out.append(DemoFile(customer, title.format(y0=y0, y1=y1), name.format(y0=y0, y1=y1),
                            rng.choice((1, 1, 2, 2, 3)), kind))
    return out
