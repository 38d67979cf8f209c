"""Cell accuracy predictors (task ``accuracy``): the NAR-Former V2 transformers and the baselines."""
