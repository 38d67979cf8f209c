"""Neural predictors (torch). Import :mod:`archcast.models.narformer` explicitly; nothing loads here."""
