// Command coverart_agent is a MetadataAgent sample in the style of the
// coverartarchive example plugin.
//
//   - GetAlbumImages: an empty mbid gives plugin:not_found; otherwise GET
//     https://coverartarchive.org/release/<mbid> (5000 ms). An http error,
//     a status other than 200 or a body that is not JSON gives
//     plugin:not_found. Of "images" it picks the first with "front": true,
//     else the first whose "types" contains "Front", else the first image.
//     It answers one entry per numeric key of "thumbnails" ({url,
//     size=<key>}, sorted by size); without those "large" (500) and "small"
//     (250); without those "image" (size 0). No image gives plugin:not_found.
//   - every other method gives plugin:not_implemented.
//
// Unlike the original example, the manifest allows
// https://coverartarchive.org/* (the exact pattern https://coverartarchive.org
// only admits the path "/", so every lookup would be blocked).
//
// Build: ../../build.py coverart_agent.
package main

import (
	"context"
	"encoding/json"
	"log"
	"net/url"
	"sort"
	"strconv"

	"wasmhost.local/pdk"
)

const (
	releaseURL = "https://coverartarchive.org/release/"
	timeoutMs  = 5000
)

type coverArt struct{}

type caaImage struct {
	Image      string            `json:"image"`
	Front      bool              `json:"front"`
	Types      []string          `json:"types"`
	Thumbnails map[string]string `json:"thumbnails"`
}

// pick chooses the front image as the coverartarchive example does.
func pick(images []caaImage) *caaImage {
	if len(images) == 0 {
		return nil
	}
	for i := range images {
		if images[i].Front {
			return &images[i]
		}
	}
	for i := range images {
		for _, t := range images[i].Types {
			if t == "Front" {
				return &images[i]
			}
		}
	}
	return &images[0]
}

// sizes lists the image's URLs: numeric thumbnails, else large/small, else
// the full image.
func sizes(img *caaImage) []*pdk.ExternalImage {
	out := []*pdk.ExternalImage{}
	for key, u := range img.Thumbnails {
		size, err := strconv.Atoi(key)
		if err != nil || u == "" {
			continue
		}
		out = append(out, &pdk.ExternalImage{Url: u, Size: int32(size)})
	}
	if len(out) == 0 {
		if u := img.Thumbnails["large"]; u != "" {
			out = append(out, &pdk.ExternalImage{Url: u, Size: 500})
		}
		if u := img.Thumbnails["small"]; u != "" {
			out = append(out, &pdk.ExternalImage{Url: u, Size: 250})
		}
	}
	if len(out) == 0 && img.Image != "" {
		out = append(out, &pdk.ExternalImage{Url: img.Image, Size: 0})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Size < out[j].Size })
	return out
}

func (coverArt) GetAlbumImages(_ context.Context, req *pdk.AlbumImagesRequest) (*pdk.AlbumImagesResponse, error) {
	if req.Mbid == "" {
		return nil, pdk.ErrNotFound
	}
	resp, err := pdk.HttpGet(&pdk.HttpRequest{
		Url:       releaseURL + url.PathEscape(req.Mbid),
		Headers:   map[string]string{"Accept": "application/json"},
		TimeoutMs: timeoutMs,
	})
	switch {
	case err != nil:
		log.Printf("coverart_agent: %s: %v", req.Mbid, err)
		return nil, pdk.ErrNotFound
	case resp.Error != "":
		log.Printf("coverart_agent: %s: %s", req.Mbid, resp.Error)
		return nil, pdk.ErrNotFound
	case resp.Status != 200:
		log.Printf("coverart_agent: %s: status %d", req.Mbid, resp.Status)
		return nil, pdk.ErrNotFound
	}
	var body struct {
		Images []caaImage `json:"images"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		log.Printf("coverart_agent: %s: %v", req.Mbid, err)
		return nil, pdk.ErrNotFound
	}
	img := pick(body.Images)
	if img == nil {
		return nil, pdk.ErrNotFound
	}
	images := sizes(img)
	if len(images) == 0 {
		return nil, pdk.ErrNotFound
	}
	return &pdk.AlbumImagesResponse{Images: images}, nil
}

func (coverArt) GetArtistMBID(context.Context, *pdk.ArtistMBIDRequest) (*pdk.ArtistMBIDResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (coverArt) GetArtistURL(context.Context, *pdk.ArtistURLRequest) (*pdk.ArtistURLResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (coverArt) GetArtistBiography(context.Context, *pdk.ArtistBiographyRequest) (*pdk.ArtistBiographyResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (coverArt) GetSimilarArtists(context.Context, *pdk.ArtistSimilarRequest) (*pdk.ArtistSimilarResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (coverArt) GetArtistImages(context.Context, *pdk.ArtistImageRequest) (*pdk.ArtistImageResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (coverArt) GetArtistTopSongs(context.Context, *pdk.ArtistTopSongsRequest) (*pdk.ArtistTopSongsResponse, error) {
	return nil, pdk.ErrNotImplemented
}

func (coverArt) GetAlbumInfo(context.Context, *pdk.AlbumInfoRequest) (*pdk.AlbumInfoResponse, error) {
	return nil, pdk.ErrNotImplemented
}

// main is never run in a c-shared wasip1 module: register from init.
func init() {
	pdk.RegisterMetadataAgent(coverArt{})
}

func main() {}
