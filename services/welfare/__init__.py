"""Households in hardship, their cases, and the party members paired with them."""
