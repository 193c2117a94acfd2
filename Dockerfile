# Builds the worker, the loader and the mPaaS emulator as static binaries on a
# minimal, non-root image. The image starts the worker; the compose file also
# runs the emulator from it.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0
RUN go build -trimpath -ldflags="-s -w" -o /out/worker ./cmd/worker \
 && go build -trimpath -ldflags="-s -w" -o /out/enqueue ./cmd/enqueue \
 && go build -trimpath -ldflags="-s -w" -o /out/mpaas-sim ./cmd/mpaas-sim

# distroless/static has CA certificates (mPaaS is called over verified HTTPS) and tzdata.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/worker"]
