# One image for every CronQ command; docker-compose.yml picks the command.
#   docker build -t cronq .
#   docker run --rm cronq cronq --help
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: "prepare" would build before the sources are copied.
RUN npm ci --ignore-scripts
COPY . .
# public/ (the admin's static files) may not exist in every version; make sure it does for the COPY below.
RUN npm run build && npm prune --omit=dev && mkdir -p public

FROM node:20-slim
ENV NODE_ENV=production \
    LOG_PATH=/var/log/cronq \
    PATH=/app/bin:$PATH
RUN mkdir -p /var/log/cronq && chown node:node /var/log/cronq
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/migrations ./migrations
COPY --from=build /app/views ./views
COPY --from=build /app/schema ./schema
COPY --from=build /app/public ./public
USER node
# Jobs run as the image's user; install what they need in an image built FROM this one.
CMD ["cronq", "--help"]
