"""The windows opened from the menus: retrain, models, review history, shortcuts."""
