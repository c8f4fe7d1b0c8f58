"""Activity groups (dance, gateball, calligraphy, choir, tai chi), their
sessions, and every member's volunteer service hours."""
