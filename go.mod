module github.com/mpaas-push/pushworker

go 1.26.0
