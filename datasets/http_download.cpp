#include "http_download.hpp"

#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>

#include <curl/curl.h>

#include "keras/errors.hpp"
#include "keras/progbar.hpp"

namespace keras::utils {

namespace {

// Give up on a connection that cannot be made in this time, or on a transfer that moves less than
// 1 byte/s for this long: a download never hangs.
constexpr long kConnectTimeoutSeconds = 30;
constexpr long kStallSeconds = 60;

struct Transfer {
    std::FILE* file = nullptr;
    bool write_failed = false;
    std::optional<Progbar> progbar;   // made once the first bytes arrive and the size is known
};

size_t write_body(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t written = std::fwrite(data, size, count, t->file);
    if (written != count) t->write_failed = true;
    return written * size;   // anything short of size*count makes curl stop with CURLE_WRITE_ERROR
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(user);
    if (now == 0 && !t->progbar) return 0;   // nothing received yet: no bar before the headers
    if (!t->progbar) t->progbar.emplace(total > 0 ? total : 0);   // counts bytes as steps, as Keras's get_file
    if (total <= 0 || now < total) t->progbar->update(now);
    return 0;
}

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) runtime_error("libcurl failed to initialise");
    });
}

}  // namespace

void download_to_file(const std::string& url, const std::filesystem::path& destination) {
    global_init();
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(destination.c_str(), "wb"), std::fclose);
    if (!file) runtime_error("URL fetch failure on {}: cannot write {}", url, destination.string());
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) runtime_error("URL fetch failure on {}: libcurl could not start a transfer", url);

    Transfer transfer;
    transfer.file = file.get();
    char error_buffer[CURL_ERROR_SIZE] = {};
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,ftp,ftps,file");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);   // an HTTP status >= 400 is an error, not a body
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, kStallSeconds);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "kerascpp");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &transfer);

    const CURLcode code = curl_easy_perform(c);
    const bool flushed = std::fflush(file.get()) == 0;
    if (code != CURLE_OK || transfer.write_failed || !flushed) {
        if (transfer.progbar) transfer.progbar->abandon();
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (code == CURLE_HTTP_RETURNED_ERROR) runtime_error("URL fetch failure on {}: HTTP status {}", url, status);
        if (transfer.write_failed || !flushed) runtime_error("URL fetch failure on {}: cannot write {}", url, destination.string());
        curl_off_t received = 0;
        curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &received);
        runtime_error("URL fetch failure on {}: {} ({}; {} bytes received)", url, curl_easy_strerror(code),
                      error_buffer[0] ? error_buffer : "no details", static_cast<long long>(received));
    }
    curl_off_t received = 0;
    curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &received);
    curl_off_t total = -1;
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &total);
    if (!transfer.progbar) transfer.progbar.emplace(total > 0 ? total : 0);
    transfer.progbar->finish(received);
}

}  // namespace keras::utils
