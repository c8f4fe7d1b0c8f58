"""A community's own categories, one kind per owning service (patrol:
incident, welfare: case, donations: goods; services/contracts/categories.py).

Each owning service keeps a `categories` table (its columns: CategoryColumns,
created and seeded by the service's migration), answers the three RPCs of
CategoryEntrypoints, and checks at its own writes, with require_categories,
that a record's category is known and not retired. Retiring hides a code
from new records only: old records keep it and read back as they were."""
from __future__ import annotations

from marshmallow import Schema, fields, validate
from sqlalchemy import Boolean, Integer, String, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.idempotency import idempotent
from services.common.schemas import load_or_raise, require_id, shared
from services.common.service import rpc
from services.contracts.principal import load_actor, require_admin
from services.contracts.categories import CATEGORY_ADDED, CATEGORY_RETIRED, category_code

MAX_LABEL_LENGTH = 40


class _Label(fields.String):
    """A label as shown on the wall: trimmed, then 1 to 40 characters."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class CategoryCreateSchema(Schema):
    code = category_code(required=True)
    label_zh = _Label(required=True, validate=validate.Length(min=1, max=MAX_LABEL_LENGTH))
    label_en = _Label(required=True, validate=validate.Length(min=1, max=MAX_LABEL_LENGTH))


class CategorySchema(CategoryCreateSchema):
    retired = fields.Boolean(dump_only=True, metadata={
        "description": "A retired category takes no new records; old records keep it."})


class CategoryColumns:
    """The `categories` table of an owning service (mixed into its model)."""

    __tablename__ = "categories"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    label_zh: Mapped[str] = mapped_column(String(MAX_LABEL_LENGTH))
    label_en: Mapped[str] = mapped_column(String(MAX_LABEL_LENGTH))
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer)  # the order they are listed in: the seed's, then as added


def _known(session, model, codes) -> dict[str, tuple[bool, str]]:
    """Each of `codes` the table knows, in the categories' order: whether it is
    retired, and its label in words (as `labels` gives it)."""
    return {code: (retired, f"{zh} {en}") for code, retired, zh, en in session.execute(
        select(model.code, model.retired, model.label_zh, model.label_en)
        .where(model.code.in_(set(codes))).order_by(model.position, model.code)).all()}


def _problems(wanted: set, known: dict, kind: str, retired_ok: bool) -> dict[str, str]:
    found = {}
    for code in sorted(wanted):
        if code not in known:
            found[code] = f"No {kind} category has the code {code}; GET /categories lists them."
        elif known[code][0] and not retired_ok:
            found[code] = (f"The {kind} category {code} is retired: it takes no new records; "
                           "GET /categories lists the others.")
    return found


def problems(session, model, kind: str, codes, retired_ok: bool = False) -> dict[str, str]:
    """Why each of `codes` may not go on a new record (unknown, or retired
    unless `retired_ok`); empty when all may."""
    wanted = set(codes)
    if not wanted:  # a gift of cash: nothing to ask the database
        return {}
    return _problems(wanted, _known(session, model, wanted), kind, retired_ok)


def labels(session, model, codes) -> list[str]:
    """Each code in words, Chinese then English ("违章建筑 Illegal structure"), as
    events carry them for alerts; the code itself where none is known."""
    codes = list(codes)
    found = {code: label for code, (_retired, label) in _known(session, model, codes).items()}
    return [found.get(code, code) for code in codes]


def labelled(session, model, counts: dict[str, dict]) -> list[dict]:
    """Counts per category (`{code: {"reported": 3, ...}}`) as a list in the
    categories' order, each with its code and labels (a summary's rows); a
    code the table does not know keeps itself as its labels."""
    known = {code: (zh, en, position) for code, zh, en, position in session.execute(
        select(model.code, model.label_zh, model.label_en, model.position).where(model.code.in_(set(counts)))).all()}
    order = sorted(counts, key=lambda code: (known.get(code, (None, None, len(known) + 1))[2], code))
    return [{"category": code, "label_zh": known.get(code, (code,))[0], "label_en": known.get(code, (code, code))[1],
             **counts[code]} for code in order]


def require_categories(session, model, kind: str, field: str, codes) -> dict[str, str]:
    """InvalidInput naming `field` unless every code is a known, active
    category. Else each code's label in words (as `labels` gives it), in the
    categories' order: a write checks its categories and labels its alert
    with one query."""
    wanted = set(codes)
    known = _known(session, model, wanted) if wanted else {}
    found = _problems(wanted, known, kind, retired_ok=False)
    if found:
        raise InvalidInput(next(iter(found.values())), {"fields": {field: list(found.values())}})
    return {code: label for code, (_retired, label) in known.items()}


class CategoryEntrypoints:
    """Mixed into an owning service, which sets `category_kind` and
    `category_model` (and `kept_categories`: codes it never retires, with why)."""

    category_kind: str
    category_model: type
    kept_categories: dict[str, str] = {}

    @rpc
    def list_categories(self) -> list[dict]:
        """Every category of this kind in order, retired ones too (old records use them)."""
        model = self.category_model
        rows = self.db.session.scalars(select(model).order_by(model.position, model.code)).all()
        return shared(CategorySchema, many=True).dump(rows)

    @rpc
    @idempotent
    def add_category(self, payload: dict, actor: dict) -> dict:
        require_admin(load_actor(actor))
        data = load_or_raise(shared(CategoryCreateSchema), payload)
        model, kind = self.category_model, self.category_kind
        taken = Conflict(f"The {kind} category {data['code']} exists already (retired ones keep their code).",
                         {"fields": {"code": ["Taken."]}})
        with self.db.unit_of_work() as uow:
            if uow.session.get(model, data["code"]) is not None:
                raise taken
            last = uow.session.scalar(select(func.max(model.position)))
            category = model(**data, retired=False, position=0 if last is None else last + 1)
            uow.session.add(category)
            try:
                uow.session.flush()
            except IntegrityError:  # the same code added at once elsewhere
                raise taken
            uow.emit(CATEGORY_ADDED, {"kind": kind, "code": category.code})
            uow.commit()
        return shared(CategorySchema).dump(category)

    @rpc
    def retire_category(self, code: str, actor: dict) -> dict:
        """No new records of this category; old ones keep it."""
        require_admin(load_actor(actor))
        model, kind = self.category_model, self.category_kind
        with self.db.unit_of_work() as uow:
            category = uow.session.get(model, require_id(code, "code"))
            if category is None:
                raise NotFound(f"No {kind} category has the code {code}.")
            if code in self.kept_categories:
                raise Conflict(f"The {kind} category {code} cannot be retired: {self.kept_categories[code]}.")
            claimed = uow.session.execute(update(model).where(model.code == code, model.retired.is_(False))
                                          .values(retired=True))
            if claimed.rowcount != 1:
                raise Conflict(f"The {kind} category {code} is retired already.")
            uow.emit(CATEGORY_RETIRED, {"kind": kind, "code": code})
            uow.commit()
        return {**shared(CategorySchema).dump(category), "retired": True}
