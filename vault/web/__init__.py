"""Web plumbing shared by pages and the API: the guard, authentication, places and the request pipeline."""
