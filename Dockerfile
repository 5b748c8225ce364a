# drillbot's image: a static binary on distroless, running as nonroot (65532).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/drillbot-io/drillbot/internal/version.Version=${VERSION}" -o /drillbot ./cmd/drillbot

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /drillbot /drillbot
USER 65532:65532
ENTRYPOINT ["/drillbot"]
