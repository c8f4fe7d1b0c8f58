"""Categories the community keeps itself: incident categories (patrol), case
categories (welfare) and goods categories (donations). The owning service
alone knows which codes exist and which are retired, and checks that at its
writes; everywhere else (events, the gateway, the dashboard) a category is a
code of the shape below, so a category added today is refused by no consumer,
also while an older instance of some service still runs."""
from marshmallow import Schema, fields, validate

# Which service owns each kind: the one that keeps its table and checks its writes.
OWNERS = {"incident": "patrol", "case": "welfare", "goods": "donations"}
KINDS = tuple(OWNERS)

CODE_PATTERN = r"^[a-z][a-z0-9_]{1,39}\Z"
CODE_RULE = "2 to 40 characters: a lowercase ASCII letter, then lowercase letters, digits or '_'."

CATEGORY_ADDED = "category_added"
CATEGORY_RETIRED = "category_retired"


def category_code(**kwargs) -> fields.String:
    """A category's code, wherever one is read: its shape only, never a list."""
    return fields.String(validate=validate.Regexp(CODE_PATTERN, error=CODE_RULE), **kwargs)


class CategoryChanged(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    code = category_code(required=True)


# Each owning service's SCHEMAS include these.
SCHEMAS = {CATEGORY_ADDED: CategoryChanged, CATEGORY_RETIRED: CategoryChanged}
