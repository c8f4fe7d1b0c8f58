"""Donation drives: campaigns, cash and in-kind donations with receipts, stock of goods, dispatches."""
