"""`make package` and `make lock`: the Lambda artifacts (`build`) and the pins (`lock`)."""
