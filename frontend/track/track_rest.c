/* track_rest.c — the MLflow REST client: experiments/get-by-name,
 * experiments/create, runs/create, runs/log-batch, runs/update and the
 * mlflow-artifacts PUT, over libcurl with JSON bodies (cJSON). */
#include "track.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
    char *p;
    size_t n;
} buf;

static size_t on_data(char *data, size_t size, size_t nmemb, void *ctx)
{
    buf *b = ctx;
    size_t k = size * nmemb;
    char *p = realloc(b->p, b->n + k + 1);
    if (!p)
        return 0;
    memcpy(p + b->n, data, k);
    b->p = p;
    b->n += k;
    p[b->n] = 0;
    return k;
}

static void global_init(void)
{
    static int done;
    if (!done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        done = 1;
    }
}

void mlf_init(mlf_client *c, const char *uri, int timeout_s)
{
    memset(c, 0, sizeof *c);
    snprintf(c->base, sizeof c->base, "%s", uri);
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = 0;
    c->timeout_s = timeout_s > 0 ? timeout_s : 10;
    global_init();
}

/* One request; body (JSON text) for POST, file for PUT, neither for GET.
 * *out receives the parsed JSON answer (may be NULL). */
static int request(mlf_client *c, const char *method, const char *path, const char *body, FILE *file,
                   long file_size, cJSON **out)
{
    if (out)
        *out = NULL;
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(c->error, sizeof c->error, "libcurl could not start a request");
        return -1;
    }
    char url[2048];
    snprintf(url, sizeof url, "%s/%s", c->base, path);
    buf b = {0};
    /* no "Expect: 100-continue" round trip before a larger body */
    struct curl_slist *hdr = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)c->timeout_s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)(c->timeout_s < 5 ? c->timeout_s : 5));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (body) {
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    } else if (file) {
        hdr = curl_slist_append(hdr, "Content-Type: application/octet-stream");
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READDATA, file);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)file_size);
    }
    if (method && strcmp(method, "PUT") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (hdr)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    CURLcode rc = curl_easy_perform(h);
    c->http = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->http);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    int ret = 0;
    if (rc != CURLE_OK) {
        snprintf(c->error, sizeof c->error, "%.8s %.800s: %.180s", method, url, curl_easy_strerror(rc));
        ret = -1;
    } else if (c->http >= 300) {
        cJSON *j = b.p ? cJSON_Parse(b.p) : NULL;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
        snprintf(c->error, sizeof c->error, "%.8s %.600s: HTTP %ld: %.380s", method, url, c->http,
                 cJSON_IsString(m) ? m->valuestring : b.p ? b.p : "");
        cJSON_Delete(j);
        ret = c->http >= 400 && c->http < 500 ? -2 : -1;
    } else if (out && b.p) {
        *out = cJSON_Parse(b.p);
    }
    free(b.p);
    return ret;
}

static int post(mlf_client *c, const char *path, cJSON *body, cJSON **out)
{
    char *text = cJSON_PrintUnformatted(body);
    if (!text) {
        snprintf(c->error, sizeof c->error, "out of memory");
        return -1;
    }
    int rc = request(c, "POST", path, text, NULL, 0, out);
    free(text);
    return rc;
}

int mlf_experiment_id(mlf_client *c, const char *name, char *id, size_t id_len)
{
    CURL *h = curl_easy_init();
    char *esc = h ? curl_easy_escape(h, name, 0) : NULL;
    char path[1200];
    snprintf(path, sizeof path, "api/2.0/mlflow/experiments/get-by-name?experiment_name=%s", esc ? esc : name);
    curl_free(esc);
    if (h)
        curl_easy_cleanup(h);
    cJSON *out = NULL;
    int rc = request(c, "GET", path, NULL, NULL, 0, &out);
    if (rc == 0) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(out, "experiment");
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(e, "experiment_id");
        if (cJSON_IsString(i)) {
            snprintf(id, id_len, "%s", i->valuestring);
            cJSON_Delete(out);
            return 0;
        }
    }
    cJSON_Delete(out);
    if (rc == -1)
        return -1;
    /* 404 RESOURCE_DOES_NOT_EXIST: create it */
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "name", name);
    rc = post(c, "api/2.0/mlflow/experiments/create", body, &out);
    cJSON_Delete(body);
    if (rc != 0)
        return rc;
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(out, "experiment_id");
    if (cJSON_IsString(i))
        snprintf(id, id_len, "%s", i->valuestring);
    cJSON_Delete(out);
    if (!cJSON_IsString(i)) {
        snprintf(c->error, sizeof c->error, "%s: experiments/create answered without an experiment_id", c->base);
        return -2;
    }
    return 0;
}

int mlf_create_run(mlf_client *c, const char *experiment_id, const char *run_name, long long start_ms,
                   const void *tags_json, char *run_id, size_t run_id_len, char *artifact_uri, size_t uri_len)
{
    cJSON *body = cJSON_CreateObject(), *out = NULL;
    cJSON_AddStringToObject(body, "experiment_id", experiment_id);
    cJSON_AddStringToObject(body, "run_name", run_name);
    cJSON_AddNumberToObject(body, "start_time", (double)start_ms);
    if (tags_json)
        cJSON_AddItemToObject(body, "tags", cJSON_Duplicate(tags_json, 1));
    int rc = post(c, "api/2.0/mlflow/runs/create", body, &out);
    cJSON_Delete(body);
    if (rc != 0)
        return rc;
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(out, "run"), "info");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(info, "run_id");
    const cJSON *au = cJSON_GetObjectItemCaseSensitive(info, "artifact_uri");
    int ok = cJSON_IsString(id);
    if (ok)
        snprintf(run_id, run_id_len, "%s", id->valuestring);
    snprintf(artifact_uri, uri_len, "%s", cJSON_IsString(au) ? au->valuestring : "");
    cJSON_Delete(out);
    if (!ok) {
        snprintf(c->error, sizeof c->error, "%s: runs/create answered without a run_id", c->base);
        return -2;
    }
    return 0;
}

int mlf_log_batch(mlf_client *c, const char *run_id, void *body_json)
{
    cJSON *body = body_json;
    cJSON_DeleteItemFromObjectCaseSensitive(body, "run_id");
    cJSON_AddStringToObject(body, "run_id", run_id);
    return post(c, "api/2.0/mlflow/runs/log-batch", body, NULL);
}

int mlf_update_run(mlf_client *c, const char *run_id, const char *status, long long end_ms)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "run_id", run_id);
    cJSON_AddStringToObject(body, "status", status);
    cJSON_AddNumberToObject(body, "end_time", (double)end_ms);
    int rc = post(c, "api/2.0/mlflow/runs/update", body, NULL);
    cJSON_Delete(body);
    return rc;
}

/* artifact_uri mlflow-artifacts:/1/<run>/artifacts (the server proxies the
 * artefact store): PUT api/2.0/mlflow-artifacts/artifacts/1/<run>/artifacts/<name>. */
int mlf_put_artifact(mlf_client *c, const char *artifact_uri, const char *name, const char *path)
{
    const char *scheme = "mlflow-artifacts:";
    if (strncmp(artifact_uri, scheme, strlen(scheme)) != 0) {
        snprintf(c->error, sizeof c->error,
                 "the run's artifact store is %s, not the server's proxy (mlflow-artifacts:): start the server "
                 "with --serve-artifacts (MLflow's default) to receive artefacts",
                 artifact_uri[0] ? artifact_uri : "unknown");
        return -2;
    }
    const char *rel = artifact_uri + strlen(scheme);
    if (strncmp(rel, "//", 2) == 0) { /* mlflow-artifacts://host:port/path */
        const char *slash = strchr(rel + 2, '/');
        rel = slash ? slash : "";
    }
    while (*rel == '/')
        rel++;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(c->error, sizeof c->error, "cannot read the artefact %s", path);
        return -2;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char url[2048];
    snprintf(url, sizeof url, "api/2.0/mlflow-artifacts/artifacts/%s/%s", rel, name);
    int rc = request(c, "PUT", url, NULL, f, size, NULL);
    fclose(f);
    return rc;
}
